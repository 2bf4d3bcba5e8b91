// The dashboard in headless Chromium against a running hooklog (started by
// services/hooklog/tests/it/admin/dashboard.rs, which passes everything in the environment).
// Fails (exit 1, naming the step) on any broken expectation, page error, console error, or
// request to another origin. Screenshots go to $ARTIFACTS.
import { createHmac } from "node:crypto";
import { readFileSync, mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const ADMIN = env("ADMIN_URL");
const INGRESS = env("INGRESS_URL");
const ARTIFACTS = env("ARTIFACTS");
const TARGET = env("TARGET_ID");
const HEAD = env("PUSH_HEAD");
mkdirSync(ARTIFACTS, { recursive: true });

const problems = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let step = "start";
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const origin = new URL(ADMIN).origin;
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(origin) && !url.startsWith("data:")) problems.push(`request to another origin: ${url}`);
    if (/[?&](token|access_token)=/i.test(url)) problems.push(`a token in a URL: ${url}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  // Failed requests are judged by their answers below; Chromium also logs each as an error.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) problems.push(`console error: ${message.text()}`);
  });
  // The only answers that may fail: the wrong token's login (401) and the read token's write (403).
  const expected = [];
  page.on("response", (response) => {
    const { pathname } = new URL(response.url());
    const status = response.status();
    if (status < 400) return;
    const i = expected.findIndex((e) => e.status === status && e.path === pathname);
    if (i >= 0) expected.splice(i, 1);
    else problems.push(`${response.request().method()} ${pathname} answered ${status}`);
  });

  step = "a wrong token is refused";
  expected.push({ status: 401, path: "/v1/admin/session" });
  await page.goto(ADMIN);
  await page.fill("#token", "not-a-token-hooklog-knows");
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#login-error:not([hidden])");
  const refused = await page.textContent("#login-error");
  if (!refused.includes("not one hooklog knows")) throw new Error(`login error says ${JSON.stringify(refused)}`);
  if ((await page.getAttribute("#token", "type")) !== "password") throw new Error("the token input is not a password input");

  step = "log in with the write token";
  await page.fill("#token", env("WRITE_TOKEN"));
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#nav:not([hidden])");
  await page.waitForSelector("#login", { state: "hidden" });
  await page.waitForSelector("#live-state.live", { timeout: 10000 });
  const stored = await page.evaluate(() => sessionStorage.getItem("hooklog.token"));
  if (stored !== env("WRITE_TOKEN")) throw new Error("the token is not in session storage");

  step = "the projection-lag chart has a sample";
  await page.waitForFunction(() => document.getElementById("chart-lag").dataset.latest !== undefined, null, { timeout: 10000 });

  step = "Connect GitHub: the install link carries a state hooklog issued";
  await page.click("#connect-github");
  await page.waitForSelector("#install-link");
  const link = new URL(await page.getAttribute("#install-link", "href"));
  if (`${link.origin}${link.pathname}` !== "https://github.com/apps/hooklog-test/installations/new") throw new Error(`the install link is ${link}`);
  const issued = link.searchParams.get("state");
  if (!issued || issued.length < 32) throw new Error(`the install link's state is ${issued}`);

  step = "Connect GitHub: GitHub's redirect connects the installation it verified";
  // What GitHub does after the install: send the browser to the App's Setup URL.
  await page.goto(`${ADMIN}/github/setup?installation_id=4300&setup_action=install&state=${issued}`);
  await page.waitForURL(`${ADMIN}/#instances`);
  await page.waitForSelector('td:text-is("octo-org")', { timeout: 15000 });
  expected.push({ status: 400, path: "/github/setup" });
  await page.goto(`${ADMIN}/github/setup?installation_id=4300&setup_action=install&state=${issued}`);
  const reused = await page.textContent("#setup-message");
  if (!reused.includes("already used")) throw new Error(`a used state says ${JSON.stringify(reused)}`);
  await page.goto(`${ADMIN}/#instances`);

  step = "Connect GitHub: the repository picker tracks a default branch";
  const instanceRow = 'tr:has(td:text-is("4300"))';
  await page.click(`${instanceRow} button[data-action=repositories]`);
  await page.waitForSelector('button[data-repository="octo-org/site"]');
  if ((await page.textContent('button[data-repository="octo-org/site"]')) !== "Track trunk") throw new Error("the picker does not offer the default branch");
  await page.click('button[data-repository="octo-org/docs"]');
  await page.waitForSelector('#picker td:text-is("octo-org/docs") ~ td .chip.completed', { timeout: 15000 });
  await page.screenshot({ path: `${ARTIFACTS}/connect.png`, fullPage: true });

  step = "the instance shows with its target";
  await page.waitForSelector(`td:text-is("${env("INSTALLATION")}")`);
  await page.screenshot({ path: `${ARTIFACTS}/instances.png`, fullPage: true });
  await page.click("nav a[href='#targets']");
  const row = `tr[data-key='${TARGET}']`;
  await page.waitForSelector(row);

  // Everything from here on must arrive live: a reload would drop this marker.
  await page.evaluate(() => { window.__notReloaded = true; });
  // Record every status the target's chip shows, as it changes.
  // Every value the chip takes is a new text node (or a new row), kept by the mutation record
  // even when several changes land in one task.
  await page.evaluate((selector) => {
    window.__statuses = [];
    const push = (text) => {
      if (text && window.__statuses[window.__statuses.length - 1] !== text) window.__statuses.push(text);
    };
    const initial = document.querySelector(`${selector} [data-field=status]`);
    push(initial && initial.textContent);
    new MutationObserver((records) => {
      for (const record of records) {
        for (const node of record.addedNodes) {
          if (node.nodeType === Node.TEXT_NODE) {
            const parent = record.target;
            if (parent.matches && parent.matches(`${selector} [data-field=status]`)) push(node.data);
          } else if (node.querySelector) {
            const chip = node.matches(`${selector} [data-field=status]`) ? node : node.querySelector(`${selector} [data-field=status]`);
            if (chip) push(chip.textContent);
          }
        }
      }
    }).observe(document.getElementById("view"), { subtree: true, childList: true });
  }, row);

  step = "a signed push appears live and its sync completes";
  const body = readFileSync(env("PUSH_FILE"));
  const signature = "sha256=" + createHmac("sha256", env("SECRET")).update(body).digest("hex");
  const answer = await fetch(`${INGRESS}/v1/webhooks/connectors/github`, {
    method: "POST",
    headers: { "X-GitHub-Event": "push", "X-GitHub-Delivery": "dashboard-push-1", "X-Hub-Signature-256": signature, "Content-Type": "application/json" },
    body,
  });
  if (answer.status !== 202) throw new Error(`the ingress answered ${answer.status}`);
  await page.waitForFunction(([selector, head]) => {
    const requested = document.querySelector(`${selector} [data-field=requested]`);
    const status = document.querySelector(`${selector} [data-field=status]`);
    return requested && requested.textContent === head.slice(0, 7) && status && status.textContent === "completed";
  }, [row, HEAD], { timeout: 30000 });
  const synced = await page.textContent(`${row} [data-field=synced]`);
  if (synced !== HEAD.slice(0, 7)) throw new Error(`synced shows ${synced}, not ${HEAD.slice(0, 7)}`);

  step = "Sync: queued, running, completed, live";
  await page.evaluate(() => { window.__statuses = ["completed"]; });
  await page.click(`${row} button[data-action=sync]`);
  await page.waitForFunction(() => {
    const s = window.__statuses;
    return s.includes("running") && s[s.length - 1] === "completed" && s.length >= 3;
  }, null, { timeout: 30000 });
  const statuses = await page.evaluate(() => window.__statuses);
  const order = statuses.filter((s) => ["queued", "running", "completed"].includes(s));
  if (!(order.indexOf("queued") >= 0 && order.indexOf("queued") < order.indexOf("running") && order.lastIndexOf("completed") > order.indexOf("running"))) {
    throw new Error(`the status went ${JSON.stringify(statuses)}, not queued, running, completed`);
  }
  if (!(await page.evaluate(() => window.__notReloaded))) throw new Error("the page reloaded");
  await page.screenshot({ path: `${ARTIFACTS}/targets.png`, fullPage: true });

  step = "the target's sync history";
  await page.click(`${row} a`);
  await page.waitForSelector("text=Sync history");
  await page.waitForSelector("text=README.md");
  await page.screenshot({ path: `${ARTIFACTS}/target.png`, fullPage: true });

  step = "the delivery's raw payload";
  await page.click("nav a[href='#deliveries']");
  await page.fill("#f-id", "dashboard-push-1");
  await page.click("form.filters button[type=submit]");
  await page.waitForSelector("#payload");
  const payload = JSON.parse(await page.textContent("#payload"));
  if (payload.after !== HEAD) throw new Error(`the raw payload's after is ${payload.after}`);
  await page.screenshot({ path: `${ARTIFACTS}/delivery.png`, fullPage: true });

  step = "a dead letter is redriven";
  await page.click("nav a[href='#dead-letters']");
  await page.waitForSelector("button[data-action=redrive]");
  await page.click("button[data-action=redrive]");
  await page.waitForSelector("#notice:not([hidden])");
  const redrove = await page.textContent("#notice");
  if (!redrove.includes("dashboard-bad-push: dead_letter")) throw new Error(`the redrive says ${JSON.stringify(redrove)}`);

  step = "a CI incident shows, and resolves live when the next run passes";
  await page.click("nav a[href='#repositories']");
  await page.waitForSelector("#incidents .chip.open");
  const incident = await page.textContent("#incidents");
  if (!incident.includes("octo-org/docs") || !incident.includes("CI")) throw new Error(`the incident reads ${JSON.stringify(incident)}`);
  const run = readFileSync(env("RUN_FILE"));
  const runSignature = `sha256=${createHmac("sha256", env("CONNECTION_SECRET")).update(run).digest("hex")}`;
  const passed = await fetch(env("CONNECTION_URL"), {
    method: "POST", body: run,
    headers: { "Content-Type": "application/json", "X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": `dashboard-run-${Date.now()}`, "X-Hub-Signature-256": runSignature },
  });
  if (passed.status !== 202) throw new Error(`the passing run answered ${passed.status}`);
  await page.waitForSelector("#incidents .chip.resolved", { timeout: 20000 });

  step = "a repository is connected and disconnected from the dashboard";
  await page.selectOption("#repo-provider", "gitlab");
  await page.fill("#repo-name", "group/handbook");
  await page.fill("#repo-token", "glpat-dashboard-test-token");
  await page.click("#connect-submit");
  await page.waitForSelector("#notice:not([hidden])");
  const connectedNotice = await page.textContent("#notice");
  if (!connectedNotice.includes("/v1/webhooks/gitlab/")) throw new Error(`the connect notice says ${JSON.stringify(connectedNotice)}`);
  if (await page.inputValue("#repo-token")) throw new Error("the token stays in its field");
  const connectionRow = "tr:has(td:text-is('group/handbook'))";
  // Nothing answers at the GitLab API the test set: the creation fails, with the reason shown.
  await page.waitForSelector(`${connectionRow} .chip.failed`, { timeout: 20000 });
  if (!(await page.textContent(connectionRow)).includes("could not be reached")) throw new Error("the failure's reason is not shown");
  if ((await page.content()).includes("glpat-dashboard-test-token")) throw new Error("the token is on the page");
  await page.click(`${connectionRow} button[data-action=disconnect-repository]`);
  await page.click("#confirm-ok");
  await page.waitForSelector(`${connectionRow} :is(.chip.disconnecting, .chip.delete_failed, .chip.disconnected)`, { timeout: 20000 });
  await page.screenshot({ path: `${ARTIFACTS}/repositories.png`, fullPage: true });

  step = "a phone-width view";
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("nav a[href='#targets']");
  await page.waitForSelector(row);
  await page.screenshot({ path: `${ARTIFACTS}/targets-phone.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (overflow > 0) throw new Error(`the page is ${overflow}px wider than a phone`);
  await page.setViewportSize({ width: 1280, height: 800 });

  step = "keyboard: the sync button is reachable with Tab";
  await page.focus("body");
  let reached = false;
  for (let i = 0; i < 60 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement && document.activeElement.dataset.action === "sync");
  }
  if (!reached) throw new Error("Tab never reaches the Sync button");

  step = "log out, then a read-token session has no write controls";
  await page.click("#logout");
  await page.waitForSelector("#login", { state: "visible" });
  await page.waitForSelector("#app", { state: "hidden" });
  if (await page.evaluate(() => sessionStorage.getItem("hooklog.token"))) throw new Error("logout left the token");
  await page.fill("#token", env("READ_TOKEN"));
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#nav:not([hidden])");
  await page.click("nav a[href='#targets']");
  await page.waitForSelector(row);
  for (const hash of ["#instances", "#targets", "#dead-letters", "#github", "#repositories", `#target/${TARGET}`]) {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.waitForTimeout(300);
    await page.waitForFunction(() => document.getElementById("view").children.length > 0);
    const controls = await page.$$eval("#view button, #view input[type=checkbox], #view form:not(.filters) input", (els) => els.map((e) => e.outerHTML));
    if (controls.length) throw new Error(`a read token sees write controls on ${hash}: ${controls.join(" ")}`);
  }
  await page.screenshot({ path: `${ARTIFACTS}/read-only.png`, fullPage: true });
  // The API refuses a write with it anyway.
  expected.push({ status: 403, path: `/v1/admin/targets/${TARGET}/sync` });
  const status = await page.evaluate(async (target) => (await fetch(`/v1/admin/targets/${target}/sync`, {
    method: "POST", headers: { Authorization: `Bearer ${sessionStorage.getItem("hooklog.token")}`, "Content-Type": "application/json" }, body: "{}",
  })).status, TARGET);
  if (status !== 403) throw new Error(`a read token's sync answered ${status}`);

  step = "nothing else went wrong";
  if (problems.length) throw new Error(problems.join("\n"));
  console.log(JSON.stringify({ ok: true, statuses }));
} catch (err) {
  console.error(`dashboard: ${step}: ${err.message}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}

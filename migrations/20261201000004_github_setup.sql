-- The dashboard's Connect GitHub: each `state` hooklog hands out with a link to the App's
-- install page, kept as its SHA-256 (the state itself is a bearer secret until used), with who
-- asked for it. GitHub sends the admin back with it; it is taken once, before it expires.
CREATE TABLE IF NOT EXISTS github_setup_states
(
    state_sha256 text        PRIMARY KEY,
    issued_by    text        NOT NULL,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);

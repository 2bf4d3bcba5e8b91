//! How a drawn request becomes bytes: its headers in order (a valid signature computed over the
//! body the server will read), its framing, and the body the server reads under that framing.

use hooklog_domain::github::{Signature, WebhookSecret};

use super::request::{Drawn, Length, Sig};
use crate::support::SECRET;

impl Drawn {
    /// The body bytes the server reads as this request's body.
    pub fn effective_body(&self) -> &[u8] {
        match &self.length {
            Length::Missing => &[],
            Length::Low(at) => &self.body[..at.index(self.body.len().max(1)).min(self.body.len())],
            _ => &self.body,
        }
    }

    fn signature_value(&self, sig: &Sig) -> Vec<u8> {
        let secret = WebhookSecret::new(SECRET);
        match sig {
            Sig::Valid => Signature::sign(&secret, self.effective_body())
                .to_string()
                .into_bytes(),
            Sig::ValidUppercase => {
                let hex = Signature::sign(&secret, self.effective_body()).to_string()[7..]
                    .to_ascii_uppercase();
                format!("sha256={hex}").into_bytes()
            }
            Sig::OtherBody => Signature::sign(&secret, b"other").to_string().into_bytes(),
            Sig::WrongSecret => {
                Signature::sign(&WebhookSecret::new("not the secret"), self.effective_body())
                    .to_string()
                    .into_bytes()
            }
            Sig::Text(text) => text.clone().into_bytes(),
            Sig::Opaque(bytes) => bytes.clone(),
        }
    }

    /// Each header as sent, in order.
    pub fn headers(&self) -> Vec<(String, Vec<u8>)> {
        let mut headers = vec![("Host".to_owned(), b"127.0.0.1".to_vec())];
        for sig in &self.signatures {
            headers.push(("X-Hub-Signature-256".to_owned(), self.signature_value(sig)));
        }
        for (name, values) in [
            ("X-GitHub-Event", &self.event),
            ("X-GitHub-Delivery", &self.delivery),
            ("Content-Type", &self.content_type),
        ] {
            headers.extend(values.iter().map(|v| (name.to_owned(), v.clone())));
        }
        if let Some(hook) = &self.hook_id {
            headers.push(("X-GitHub-Hook-ID".to_owned(), hook.clone()));
        }
        if let Some((kind, id)) = &self.target {
            headers.push((
                "X-GitHub-Hook-Installation-Target-Type".to_owned(),
                kind.clone(),
            ));
            headers.push((
                "X-GitHub-Hook-Installation-Target-ID".to_owned(),
                id.clone(),
            ));
        }
        headers.extend(self.extra_headers.iter().cloned());
        let len = self.body.len() as u64;
        match &self.length {
            Length::True => {
                headers.push(("Content-Length".to_owned(), len.to_string().into_bytes()))
            }
            Length::Missing => {}
            Length::High { extra, .. } => headers.push((
                "Content-Length".to_owned(),
                (len + extra).to_string().into_bytes(),
            )),
            Length::Low(_) => headers.push((
                "Content-Length".to_owned(),
                self.effective_body().len().to_string().into_bytes(),
            )),
            Length::OverLimit(n) => {
                headers.push(("Content-Length".to_owned(), n.to_string().into_bytes()))
            }
            Length::Garbage(text) => {
                headers.push(("Content-Length".to_owned(), text.clone().into_bytes()))
            }
            Length::Twice => {
                headers.push(("Content-Length".to_owned(), len.to_string().into_bytes()));
                headers.push(("Content-Length".to_owned(), len.to_string().into_bytes()));
            }
            Length::Chunked => headers.push(("Transfer-Encoding".to_owned(), b"chunked".to_vec())),
        }
        if self.expect_continue {
            headers.push(("Expect".to_owned(), b"100-continue".to_vec()));
        }
        if self.close {
            headers.push(("Connection".to_owned(), b"close".to_vec()));
        }
        headers
    }

    /// The bytes put on the wire.
    pub fn wire(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path).into_bytes();
        for (name, value) in self.headers() {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if matches!(self.length, Length::Chunked) {
            for chunk in self.body.chunks(4096) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

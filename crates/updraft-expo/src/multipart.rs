//! The `multipart/mixed` envelope both clients parse: CRLF everywhere, lowercase part header names (iOS looks up
//! `expo-signature` case-sensitively), `content-disposition: inline; name="…"` without `filename=`, and a closing
//! delimiter followed by CRLF (iOS needs it).

/// The boundary of every answer. Compact JSON never contains a CRLF, so it cannot collide.
pub const BOUNDARY: &str = "updraft-5b0d7c1e9a4f";

/// One part.
pub struct Part<'a> {
    /// The `name` in `content-disposition`.
    pub name: &'a str,
    /// The exact body bytes.
    pub body: &'a [u8],
    /// The `expo-signature` header value, when signed.
    pub signature: Option<&'a str>,
}

/// The `content-type` of a multipart answer.
pub fn content_type() -> String {
    format!("multipart/mixed; boundary={BOUNDARY}")
}

/// Writes the body of a multipart answer.
pub fn write(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.body.len() + 512).sum());
    for part in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        out.extend_from_slice(format!("content-disposition: inline; name=\"{}\"\r\n", part.name).as_bytes());
        out.extend_from_slice(b"content-type: application/json\r\n");
        if let Some(signature) = part.signature {
            out.extend_from_slice(format!("expo-signature: {signature}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(part.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_exact() {
        let body = write(&[Part { name: "directive", body: b"{}", signature: Some("sig=\"x\"") }]);
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            format!(
                "--{BOUNDARY}\r\ncontent-disposition: inline; name=\"directive\"\r\ncontent-type: application/json\r\nexpo-signature: sig=\"x\"\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n"
            )
        );
        assert!(content_type().starts_with("multipart/mixed; boundary="));
    }
}

//! Request bodies, within the size limit and the client timeout: JSON (`application/json` or no
//! content type; whole numbers written with a fraction or exponent read as the integers they are,
//! every mismatch reported with the field it is in) and the URL-encoded form of `POST /token`.

use actix_web::{
    FromRequest, HttpMessage, HttpRequest, dev::Payload, error::PayloadError, web::Bytes,
};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::{
    FieldError, Invalid, Loc, NOT_AN_INTEGER, NOT_AN_OBJECT, PayloadTooLarge, RequestTimeout,
    Unreadable, failures,
};

failures! {
    /// Why a request body was not read: too large, too slow, unreadable, or not what the route
    /// takes.
    pub enum BodyRejected {
        TooLarge(PayloadTooLarge),
        TooSlow(RequestTimeout),
        Unreadable(Unreadable),
        Invalid(Invalid),
    }
}

/// How long a client may take to send a request body: a slow sender is cut off with 408 instead of
/// holding the request open.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

impl BodyTimeout {
    const DEFAULT: std::time::Duration = std::time::Duration::from_secs(10);
}

/// The whole body, within the size limit (`web::PayloadConfig`) and the client timeout.
fn read(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<Bytes, BodyRejected>> {
    let body = Bytes::from_request(req, payload);
    let timeout = req
        .app_data::<BodyTimeout>()
        .map_or(BodyTimeout::DEFAULT, |timeout| timeout.0);
    Box::pin(async move {
        let body = tokio::time::timeout(timeout, body)
            .await
            .map_err(|_| RequestTimeout)?;
        body.map_err(|error| match error.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => PayloadTooLarge.into(),
            _ => Unreadable.into(),
        })
    })
}

/// A JSON body: `application/json` or no content type, size limited by `web::PayloadConfig`, and every
/// type mismatch reported with the field it is in.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = BodyRejected;
    type Future = LocalBoxFuture<'static, Result<Self, BodyRejected>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // FastAPI reads a body without a content type as JSON; a different type is refused.
        let is_json = match req.mime_type() {
            Ok(None) => true,
            Ok(Some(mime)) => mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON),
            Err(_) => false,
        };
        let body = read(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(Invalid::one(
                    Loc::Header("content-type"),
                    "Content type should be application/json",
                    "content_type",
                )
                .into());
            }
            let bytes = body.await?;
            Ok(ApiJson(parse_json(&bytes)?))
        })
    }
}

/// A URL-encoded form body (`POST /token`), as its name-value pairs, within the same limits.
pub struct FormBody(pub Vec<(String, String)>);

impl FormBody {
    /// The first value of a field, or the 422 item naming it as missing.
    pub fn field(&self, name: &'static str) -> Result<String, FieldError> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| FieldError::missing(Loc::BodyField(name)))
    }
}

impl FromRequest for FormBody {
    type Error = BodyRejected;
    type Future = LocalBoxFuture<'static, Result<Self, BodyRejected>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            // Decoding is lossy (a bad escape stays as it is), so any bytes are some form.
            let pairs = form_urlencoded::parse(&bytes).into_owned().collect();
            Ok(Self(pairs))
        })
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Invalid> {
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        None => return Err(Invalid(vec![FieldError::missing(Loc::Body)])),
        // serde would read an array as the struct's fields in order; clients must name them.
        Some(b'[') => return Err(Invalid(vec![not_an_object(Loc::Body)])),
        Some(_) => {}
    }
    let normalized = integral_numbers(bytes);
    let bytes = normalized.as_deref().unwrap_or(bytes);
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer)
        .map_err(|error| Invalid(vec![describe(&error, bytes)]))?;
    // Without this, `{...}{...}` would be read as its first document and the rest ignored.
    deserializer.end().map_err(|error| {
        let offset = byte_offset(bytes, error.line(), error.column());
        Invalid(vec![FieldError::not_json(offset)])
    })?;
    Ok(value)
}

fn describe(error: &serde_path_to_error::Error<serde_json::Error>, bytes: &[u8]) -> FieldError {
    let inner = error.inner();
    if inner.classify() != Category::Data {
        let offset = byte_offset(bytes, inner.line(), inner.column());
        return FieldError::not_json(offset);
    }
    // serde_json appends " at line L column C"; the location is given by `loc` instead.
    let message = inner.to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    if let Some(field) = message.strip_prefix("missing field `") {
        return FieldError::missing(Loc::BodyField(field.trim_end_matches('`')));
    }
    let path = error.path().to_string();
    let loc = if path == "." {
        Loc::Body
    } else {
        Loc::BodyField(&path)
    };
    let (msg, kind) = if message.starts_with("invalid type: floating point") {
        (
            "Input should be a valid integer, got a number with a fractional part",
            "int_from_float",
        )
    } else if message.ends_with("expected i64") {
        (NOT_AN_INTEGER, "int_type")
    } else if message.ends_with("expected a string") {
        ("Input should be a valid string", "string_type")
    } else if message.contains("expected struct") {
        (NOT_AN_OBJECT, "model_attributes_type")
    } else {
        (message, "value_error")
    };
    FieldError::new(loc, msg, kind)
}

/// JSON Schema and pydantic count `2500.0` and `1e3` as integers, and so does the API: every
/// number in `bytes` whose exact decimal value is a whole number of at most 20 digits is rewritten
/// as that integer. Decided on the text, not on an `f64`, which would round
/// `1000000000000.0000001` to a whole number. `None` when nothing needs rewriting (the usual case).
fn integral_numbers(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut rewritten: Option<Vec<u8>> = None;
    let (mut copied, mut at, mut in_string) = (0, 0, false);
    while at < bytes.len() {
        let byte = bytes[at];
        if in_string {
            match byte {
                b'\\' => at += 1,
                b'"' => in_string = false,
                _ => {}
            }
            at += 1;
            continue;
        }
        if byte == b'"' {
            in_string = true;
            at += 1;
            continue;
        }
        if !(byte == b'-' || byte.is_ascii_digit()) {
            at += 1;
            continue;
        }
        let end = at
            + bytes[at..]
                .iter()
                .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(bytes.len() - at);
        if let Some(integer) = as_integer(&bytes[at..end]) {
            let out = rewritten.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            out.extend_from_slice(&bytes[copied..at]);
            out.extend_from_slice(integer.as_bytes());
            copied = end;
        }
        at = end;
    }
    let mut out = rewritten?;
    out.extend_from_slice(&bytes[copied..]);
    Some(out)
}

/// The integer a JSON number with a fraction or an exponent stands for, if it is one.
fn as_integer(number: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(number).ok()?;
    if !text.contains(['.', 'e', 'E']) {
        return None;
    }
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // value = digits * 10^scale
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let scale = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let integer = if digits.is_empty() {
        "0".to_owned()
    } else if scale >= 0 {
        // i64 has 19 digits: anything longer is left for serde to call out of range.
        if digits.len() as i64 + scale > 20 {
            return None;
        }
        format!("{digits}{}", "0".repeat(scale as usize))
    } else {
        let cut = usize::try_from(-scale).ok()?;
        if cut > digits.len() || !digits[digits.len() - cut..].bytes().all(|b| b == b'0') {
            return None;
        }
        let kept = &digits[..digits.len() - cut];
        if kept.is_empty() {
            "0".to_owned()
        } else {
            kept.to_owned()
        }
    };
    Some(if negative && integer != "0" {
        format!("-{integer}")
    } else {
        integer
    })
}

fn not_an_object(loc: Loc) -> FieldError {
    FieldError::new(loc, NOT_AN_OBJECT, "model_attributes_type")
}

fn byte_offset(bytes: &[u8], line: usize, column: usize) -> u64 {
    let line_start: usize = bytes
        .split(|byte| *byte == b'\n')
        .take(line.saturating_sub(1))
        .map(|line| line.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_are_whole_become_integers_and_others_stay() {
        let cases = [
            ("2500.0", Some("2500")),
            ("1e3", Some("1000")),
            ("1E+3", Some("1000")),
            ("1.5e1", Some("15")),
            ("-40.00", Some("-40")),
            ("-0.0", Some("0")),
            ("0e5", Some("0")),
            ("12000e-3", Some("12")),
            ("9223372036854775807.0", Some("9223372036854775807")),
            // Not whole: left for serde to refuse.
            ("2500.5", None),
            ("0.05", None),
            ("1000000000000.0000001", None),
            ("1e-3", None),
            // Plain integers need no rewriting; absurd exponents are left to serde's range check.
            ("2500", None),
            ("1e400", None),
            ("1e99999999999999999999", None),
        ];
        for (number, expected) in cases {
            assert_eq!(
                as_integer(number.as_bytes()).as_deref(),
                expected,
                "{number}"
            );
        }
    }

    #[test]
    fn only_numbers_outside_strings_are_rewritten() {
        let body = br#"{"a": "1.0 \"2.0\"", "b": 3.0, "c": [1e1, -2.50e1]}"#;
        let rewritten = integral_numbers(body).expect("some numbers change");
        assert_eq!(
            String::from_utf8(rewritten).expect("UTF-8"),
            r#"{"a": "1.0 \"2.0\"", "b": 3, "c": [10, -25]}"#
        );
        assert_eq!(integral_numbers(br#"{"credit": 2500}"#), None);
    }
}

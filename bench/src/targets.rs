//! The systems under test, and each logical operation (read one ~1 KB object, create one, list them all,
//! update one, watch) expressed in each one's own API.
//!
//! - tilt-rs: the Kubernetes REST API over HTTPS with a bearer token, on `Cmd` objects padded (through one
//!   `spec.env` entry) so that each stored object's JSON is about 1 KB.
//! - floor: the bare hyper server of [`crate::servers`], over the same TLS, answering with as many bytes as
//!   tilt-rs answered for the same operation.
//! - etcd: its gRPC-gateway JSON API (`/v3/kv/range`, `/v3/kv/put`, `/v3/watch`) over plain HTTP, with values
//!   as large as tilt-rs's objects (base64 in JSON, as the gateway encodes bytes).

use base64::Engine;
use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::client::Req;

/// The collection every tilt-rs request goes to.
pub const CMDS: &str = "/apis/tilt.dev/v1alpha1/cmds";

/// The annotation that carries an update's sequence number (tilt-rs and the floor).
const SEQ_MARKER: &[u8] = br#""bench.tilt.dev/seq":""#;
/// Digits of a sequence number, zero-padded.
const SEQ_DIGITS: usize = 7;

/// Object number of the object GETs read.
pub const GET_TARGET: u32 = 9_000_000;
/// Object number of the object the watch benchmark updates.
pub const WATCHED: u32 = 9_000_001;
/// Object number of the size-calibration probe.
pub const PROBE: u32 = 9_999_999;
/// First object number of the (unmeasured) warm-up creates.
pub const WARMUP_BASE: u32 = 8_000_000;

/// One of the systems the benchmark measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The tilt-rs API server.
    Tilt,
    /// The bare hyper hello-world floor.
    Floor,
    /// etcd through its gRPC gateway.
    Etcd,
}

/// Sizes measured on tilt-rs that the other systems mirror.
#[derive(Clone, Debug, Default)]
pub struct Sizes {
    /// `spec.env` padding that makes a stored Cmd about 1 KB.
    pub pad: usize,
    /// Bytes of one stored Cmd's JSON (a GET response body).
    pub object: usize,
    /// Bytes of the LIST response body over the LIST benchmark's objects.
    pub list: usize,
}

/// The fixed-width name of object number `i`, so that every object has the same size.
pub fn name(i: u32) -> String {
    format!("bench-{i:07}")
}

/// A Cmd named `name` whose padding is `pad` bytes.
pub fn cmd_body(name: &str, pad: usize) -> Bytes {
    let v = json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "Cmd",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"args": ["sh", "-c", "echo hello"], "dir": "/tmp", "env": [format!("PAD={}", "x".repeat(pad))]},
    });
    Bytes::from(serde_json::to_vec(&v).expect("JSON values serialize"))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn etcd_key(i: u32) -> String {
    format!("/bench/obj/{i:07}")
}

/// An etcd value of `size` bytes that starts with `seq=NNNNNNN;` (12 bytes, so that its base64 encoding
/// starts with 16 characters that decode alone).
fn etcd_value(seq: u32, size: usize) -> String {
    let mut v = format!("seq={seq:0SEQ_DIGITS$};");
    v.extend(std::iter::repeat_n('x', size.saturating_sub(v.len())));
    v
}

fn etcd_put(key: &str, value: &str) -> Req {
    let body = json!({"key": b64(key), "value": b64(value)}).to_string();
    Req::with_body(Method::POST, "/v3/kv/put", "application/json", body)
}

fn etcd_range(body: serde_json::Value) -> Req {
    Req::with_body(Method::POST, "/v3/kv/range", "application/json", body.to_string())
}

impl Flavor {
    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Flavor::Tilt => "tilt-rs",
            Flavor::Floor => "floor (hyper)",
            Flavor::Etcd => "etcd",
        }
    }

    /// Reads the one ~1 KB object.
    pub fn get(self, s: &Sizes) -> Req {
        match self {
            Flavor::Tilt => Req::get(format!("{CMDS}/{}", name(GET_TARGET))),
            Flavor::Floor => Req::get(format!("/get?bytes={}", s.object)),
            Flavor::Etcd => etcd_range(json!({"key": b64(&etcd_key(GET_TARGET))})),
        }
    }

    /// Creates object number `i`.
    pub fn create(self, i: u32, s: &Sizes) -> Req {
        match self {
            Flavor::Tilt => Req::with_body(Method::POST, CMDS, "application/json", cmd_body(&name(i), s.pad)),
            Flavor::Floor => Req::with_body(
                Method::POST,
                format!("/create?bytes={}", s.object),
                "application/json",
                cmd_body(&name(i), s.pad),
            ),
            Flavor::Etcd => etcd_put(&etcd_key(i), &etcd_value(i, s.object)),
        }
    }

    /// Lists every object (the LIST benchmark's store holds nothing else).
    pub fn list(self, s: &Sizes) -> Req {
        match self {
            Flavor::Tilt => Req::get(CMDS),
            Flavor::Floor => Req::get(format!("/list?bytes={}", s.list)),
            Flavor::Etcd => etcd_range(json!({"key": b64("/bench/obj/"), "range_end": b64("/bench/obj0")})),
        }
    }

    /// Writes update number `seq` to the watched object, carrying `seq` for the watchers to find.
    pub fn update(self, seq: u32, s: &Sizes) -> Req {
        match self {
            Flavor::Tilt => {
                let patch = json!({"metadata": {"annotations": {"bench.tilt.dev/seq": format!("{seq:0SEQ_DIGITS$}")}}});
                Req::with_body(
                    Method::PATCH,
                    format!("{CMDS}/{}", name(WATCHED)),
                    "application/merge-patch+json",
                    patch.to_string(),
                )
            }
            Flavor::Floor => {
                // As long as tilt-rs's event line: {"type":"MODIFIED","object":<object>}.
                let mut line =
                    format!(r#"{{"type":"MODIFIED","object":{{"bench.tilt.dev/seq":"{seq:0SEQ_DIGITS$}","pad":""#);
                let target = s.object + 30;
                line.extend(std::iter::repeat_n('x', target.saturating_sub(line.len() + 3)));
                line.push_str("\"}}");
                Req::with_body(Method::POST, "/write", "application/json", line)
            }
            Flavor::Etcd => etcd_put("/bench/watch", &etcd_value(seq, s.object)),
        }
    }

    /// Opens a watch on the watched object's collection (tilt-rs: from `rv`).
    pub fn watch(self, rv: &str) -> Req {
        match self {
            Flavor::Tilt => Req::get(format!("{CMDS}?watch=true&resourceVersion={rv}")),
            Flavor::Floor => Req::get("/watch"),
            Flavor::Etcd => Req::with_body(
                Method::POST,
                "/v3/watch",
                "application/json",
                json!({"create_request": {"key": b64("/bench/watch")}}).to_string(),
            ),
        }
    }

    /// Whether a watch stream's first line is a confirmation (etcd's `created`) rather than an event.
    pub fn watch_confirms(self) -> bool {
        self == Flavor::Etcd
    }

    /// Appends to `out` the sequence number of every update in one line of a watch stream.
    pub fn seqs(self, line: &[u8], out: &mut Vec<u32>) {
        let (marker, etcd): (&[u8], bool) = match self {
            Flavor::Tilt | Flavor::Floor => (SEQ_MARKER, false),
            Flavor::Etcd => (br#""value":""#, true),
        };
        let mut at = 0;
        while let Some(pos) = find(&line[at..], marker) {
            let start = at + pos + marker.len();
            at = start;
            let digits = if etcd {
                let Some(enc) = line.get(start..start + 16) else { break };
                let Ok(dec) = base64::engine::general_purpose::STANDARD.decode(enc) else { continue };
                let Some(d) = dec.strip_prefix(b"seq=").and_then(|d| d.strip_suffix(b";")) else { continue };
                d.to_vec()
            } else {
                match line.get(start..start + SEQ_DIGITS) {
                    Some(d) => d.to_vec(),
                    None => break,
                }
            };
            if let Some(n) = std::str::from_utf8(&digits).ok().and_then(|d| d.parse().ok()) {
                out.push(n);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_round_trip() {
        let s = Sizes { pad: 10, object: 1000, list: 0 };
        let mut out = Vec::new();
        let floor = Flavor::Floor.update(42, &s);
        assert_eq!(floor.body.len(), 1030);
        Flavor::Floor.seqs(&floor.body, &mut out);
        let tilt = br#"{"type":"MODIFIED","object":{"metadata":{"annotations":{"bench.tilt.dev/seq":"0000007"}}}}"#;
        Flavor::Tilt.seqs(tilt, &mut out);
        let v = b64(&etcd_value(123, 1000));
        let etcd = format!(
            r#"{{"result":{{"events":[{{"kv":{{"value":"{v}"}}}},{{"kv":{{"value":"{}"}}}}]}}}}"#,
            b64(&etcd_value(124, 50))
        );
        Flavor::Etcd.seqs(etcd.as_bytes(), &mut out);
        assert_eq!(out, vec![42, 7, 123, 124]);
    }

    #[test]
    fn names_have_one_width() {
        assert_eq!(name(1).len(), name(PROBE).len());
    }
}

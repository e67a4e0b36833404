// Bytes → RequestDecoder, whole and split at a point taken from the input: never panics, and
// both feeds agree.

use httpkit_codec::h1::{Limits, RequestDecoder, RequestEvent};

fn run(pieces: &[&[u8]], limits: Limits) -> Vec<String> {
    let mut dec = RequestDecoder::new(limits);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for p in pieces {
        buf.extend_from_slice(p);
        loop {
            match dec.decode(&buf) {
                Err(e) => {
                    out.push(format!("err {e:?}"));
                    return out;
                }
                Ok((0, None)) => break,
                Ok((n, ev)) => {
                    match ev {
                        Some(RequestEvent::Head(h)) => out.push(format!("head {} {} {:?} {:?}", h.method, h.target(), h.body, h.headers())),
                        Some(RequestEvent::Body(b)) => out.push(format!("body {}", b.len())),
                        Some(RequestEvent::End) => out.push("end".into()),
                        None => {}
                    }
                    buf.drain(..n);
                }
            }
        }
    }
    out
}

fn normalize(v: Vec<String>) -> Vec<String> {
    // Body pieces may be cut differently; merge their lengths.
    let mut out: Vec<String> = Vec::new();
    let mut body = 0usize;
    for e in v {
        if let Some(n) = e.strip_prefix("body ") {
            body += n.parse::<usize>().unwrap_or(0);
        } else {
            if body > 0 {
                out.push(format!("body {body}"));
                body = 0;
            }
            out.push(e);
        }
    }
    if body > 0 {
        out.push(format!("body {body}"));
    }
    out
}

/// The fuzz oracle: runs one input; panics on a failure.
pub fn check(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let limits = Limits { max_line: 256, max_header_bytes: 1024, max_headers: 16, max_body: 4096 };
    let cut = data[0] as usize % data.len();
    let data = &data[1..];
    let cut = cut.min(data.len());
    let whole = normalize(run(&[data], limits));
    let split = normalize(run(&[&data[..cut], &data[cut..]], limits));
    // An error may be seen earlier with less input, but events before it must agree.
    let n = whole.len().min(split.len());
    assert_eq!(whole[..n.saturating_sub(1)], split[..n.saturating_sub(1)]);
}

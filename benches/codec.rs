//! Codec benchmarks: the HTTP/1.1 request decoder against calling `httparse` directly on the
//! same bytes. Run with `cargo bench --bench codec`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use httpkit_codec::h1::{Limits, RequestDecoder, RequestEvent};

/// What `wrk` sends by default.
const WRK: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// A browser-like request with 20 header fields.
const BROWSER: &[u8] = b"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
Host: www.kittyhell.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 115\r\n\
Connection: keep-alive\r\n\
Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral\r\n\
Referer: http://www.kittyhell.com/\r\n\
Cache-Control: max-age=0\r\n\
Sec-Fetch-Dest: image\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
DNT: 1\r\n\
Pragma: no-cache\r\n\
Upgrade-Insecure-Requests: 1\r\n\
If-None-Match: \"abc123\"\r\n\
If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n";

fn decode_all(dec: &mut RequestDecoder, input: &[u8]) -> usize {
    let mut off = 0;
    let mut heads = 0;
    loop {
        match dec.decode(&input[off..]) {
            Ok((0, None)) => return heads,
            Ok((n, ev)) => {
                off += n;
                match ev {
                    Some(RequestEvent::Head(h)) => {
                        black_box(&h);
                        heads += 1;
                    }
                    Some(RequestEvent::End) if off == input.len() => return heads,
                    _ => {}
                }
            }
            Err(_) => return heads,
        }
    }
}

fn httparse_only(input: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => {
            black_box(&req);
            n
        }
        _ => 0,
    }
}

fn bench(c: &mut Criterion) {
    for (name, input) in [("wrk", WRK), ("browser20", BROWSER)] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function("httpkit_decoder", |b| {
            let mut dec = RequestDecoder::new(Limits::default());
            b.iter(|| decode_all(&mut dec, black_box(input)))
        });
        g.bench_function("httparse_direct", |b| b.iter(|| httparse_only(black_box(input))));
        g.finish();
    }
}

criterion_group!(benches, bench);

/// WebSocket: unmasking throughput and decoding rate of small client frames.
fn ws(c: &mut Criterion) {
    use httpkit_codec::ws::{apply_mask, FrameDecoder};
    let mut g = c.benchmark_group("ws");
    let mut buf = vec![0x5au8; 64 * 1024];
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("unmask_64KiB", |b| b.iter(|| apply_mask(black_box(&mut buf), [1, 2, 3, 4], 1)));
    // 1000 masked text frames of 16 bytes each.
    let mut frames = Vec::new();
    for _ in 0..1000 {
        frames.extend_from_slice(&[0x81, 0x80 | 16, 1, 2, 3, 4]);
        let mut p = *b"hello websocket!";
        apply_mask(&mut p, [1, 2, 3, 4], 0);
        frames.extend_from_slice(&p);
    }
    g.throughput(Throughput::Elements(1000));
    g.bench_function("decode_1000_small_frames", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::new(1 << 20);
            let mut off = 0;
            let mut n = 0;
            while let Ok((used, ev)) = d.decode(&frames[off..]) {
                if used == 0 && ev.is_none() {
                    break;
                }
                off += used;
                n += usize::from(ev.is_some());
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(ws_benches, ws);
criterion_main!(benches, ws_benches);

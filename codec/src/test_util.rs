//! Helpers shared by the codec's tests: feed a decoder in pieces the way the reactor does.

use crate::h1::{ParseError, RequestDecoder, RequestEvent, RequestHead};

/// An owned decoder event; consecutive body pieces are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Ev {
    Head(RequestHead),
    Body(Vec<u8>),
    End,
    Err(ParseError),
}

/// Feeds `pieces` one after another into a fresh decoder, as a caller that keeps unconsumed
/// bytes would, and returns every event plus the number of bytes left unconsumed.
pub(crate) fn feed(dec: &mut RequestDecoder, pieces: &[&[u8]]) -> (Vec<Ev>, usize) {
    let mut buf: Vec<u8> = Vec::new();
    let mut out: Vec<Ev> = Vec::new();
    for p in pieces {
        buf.extend_from_slice(p);
        loop {
            match dec.decode(&buf) {
                Err(e) => {
                    out.push(Ev::Err(e));
                    return (out, 0);
                }
                Ok((0, None)) => break,
                Ok((n, ev)) => {
                    match ev {
                        Some(RequestEvent::Head(h)) => out.push(Ev::Head(h)),
                        Some(RequestEvent::Body(b)) => match out.last_mut() {
                            Some(Ev::Body(prev)) => prev.extend_from_slice(b),
                            _ => out.push(Ev::Body(b.to_vec())),
                        },
                        Some(RequestEvent::End) => out.push(Ev::End),
                        None => {}
                    }
                    buf.drain(..n);
                }
            }
        }
    }
    (out, buf.len())
}

/// Decodes `input` whole, one byte at a time, and split in two at every position, and asserts
/// all give the same events; returns them.
pub(crate) fn assert_split_invariant(mk: &dyn Fn() -> RequestDecoder, input: &[u8]) -> (Vec<Ev>, usize) {
    let whole = feed(&mut mk(), &[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(feed(&mut mk(), &bytes), whole, "one byte at a time");
    for i in 0..input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(feed(&mut mk(), &[a, b]), whole, "split at {i}");
    }
    whole
}

/// `input` cut at `cuts` (proptest indexes, in any order) into consecutive pieces.
pub(crate) fn cut_at<'a>(input: &'a [u8], cuts: &[proptest::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut last = 0;
    for p in points {
        pieces.push(&input[last..p]);
        last = p;
    }
    pieces.push(&input[last..]);
    pieces
}

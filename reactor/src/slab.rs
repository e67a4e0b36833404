//! A slab of connections with generation-tagged ids, so a stale id never reaches a reused slot.

/// Identifies one connection for its whole life. A slot reused by a later connection gets a new
/// generation, so commands and events carrying an old `ConnId` are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "httpkit-reactor packs a 32-bit generation and a 32-bit index into a mio token: it needs a 64-bit target"
);

impl ConnId {
    /// Packs the id into a mio token value: `(generation << 32) | index`.
    pub(crate) fn to_token(self) -> usize {
        ((self.gen as usize) << 32) | self.index as usize
    }

    pub(crate) fn from_token(t: usize) -> Self {
        Self { index: (t & 0xffff_ffff) as u32, gen: (t >> 32) as u32 }
    }
}

#[derive(Debug)]
struct Entry<T> {
    gen: u32,
    /// Boxed: a slot costs 16 bytes until used, and the slab's growth never copies connections.
    value: Option<Box<T>>,
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Self { entries: Vec::new(), free: Vec::new(), len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Reserves a slot and returns its id; the value is built from the id.
    pub(crate) fn insert_with(&mut self, f: impl FnOnce(ConnId) -> T) -> ConnId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry { gen: 0, value: None });
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[index as usize];
        // Generation 0 is never used, so token values never collide with small constants.
        e.gen = e.gen.wrapping_add(1).max(1);
        let id = ConnId { index, gen: e.gen };
        e.value = Some(Box::new(f(id)));
        self.len += 1;
        id
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        match self.entries.get_mut(id.index as usize) {
            Some(e) if e.gen == id.gen => e.value.as_deref_mut(),
            _ => None,
        }
    }

    /// The connection in slot `index`, whatever its generation, with its id.
    pub(crate) fn at_mut(&mut self, index: u32) -> Option<(ConnId, &mut T)> {
        let e = self.entries.get_mut(index as usize)?;
        let gen = e.gen;
        e.value.as_deref_mut().map(|v| (ConnId { index, gen }, v))
    }

    pub(crate) fn remove(&mut self, id: ConnId) -> Option<T> {
        match self.entries.get_mut(id.index as usize) {
            Some(e) if e.gen == id.gen && e.value.is_some() => {
                self.free.push(id.index);
                self.len -= 1;
                e.value.take().map(|b| *b)
            }
            _ => None,
        }
    }

    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.value.is_some())
            .map(|(i, e)| ConnId { index: i as u32, gen: e.gen })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_packing_round_trips() {
        let id = ConnId { index: 7, gen: 3 };
        assert_eq!(ConnId::from_token(id.to_token()), id);
        let id = ConnId { index: u32::MAX - 5, gen: u32::MAX - 1 };
        assert_eq!(ConnId::from_token(id.to_token()), id);
    }

    #[test]
    fn stale_ids_do_not_reach_reused_slots() {
        let mut s = Slab::new();
        let a = s.insert_with(|_| "a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert_with(|_| "b");
        assert_eq!(a.index, b.index);
        assert_ne!(a.gen, b.gen);
        assert!(s.get_mut(a).is_none());
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get_mut(b).copied(), Some("b"));
        assert_eq!(s.len(), 1);
    }
}

//! What a selection holds, in the formats the broker carries, and the encodings between them.

/// The most a selection may hold, all formats together. Both sides are capped: a page cannot make
/// the browser hold more than this, nor read more of what the user copied.
pub const MAX_CONTENT: usize = 16 << 20;

/// The formats the broker carries; anything else a selection offers is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Text,
    Html,
    Png,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Text, Kind::Html, Kind::Png];
}

/// How a target asks for text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    /// `STRING` is ISO Latin-1 by ICCCM.
    Latin1,
}

/// A selection's content, as read from its owner. Text is kept as UTF-8.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Content {
    pub text: Option<Vec<u8>>,
    pub html: Option<Vec<u8>>,
    pub png: Option<Vec<u8>>,
}

impl Content {
    pub fn get(&self, kind: Kind) -> Option<&[u8]> {
        match kind {
            Kind::Text => self.text.as_deref(),
            Kind::Html => self.html.as_deref(),
            Kind::Png => self.png.as_deref(),
        }
    }

    pub fn set(&mut self, kind: Kind, data: Vec<u8>) {
        let slot = match kind {
            Kind::Text => &mut self.text,
            Kind::Html => &mut self.html,
            Kind::Png => &mut self.png,
        };
        *slot = Some(data);
    }

    pub fn kinds(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.get(*k).is_some())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds().is_empty()
    }

    pub fn len(&self) -> usize {
        Kind::ALL
            .into_iter()
            .filter_map(|k| self.get(k))
            .map(<[u8]>::len)
            .sum()
    }
}

/// Latin-1 bytes as UTF-8 text.
pub fn latin1_to_utf8(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| char::from(b))
        .collect::<String>()
        .into_bytes()
}

/// UTF-8 text as Latin-1 bytes; characters Latin-1 lacks become `?`, invalid UTF-8 too.
pub fn utf8_to_latin1(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// The `TARGETS` reply's atoms: a format-32 property holds native-endian 32-bit values, and a
/// hostile owner may send a length that is not a multiple of four (the rest is dropped).
pub fn atoms_from_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_round_trip() {
        assert_eq!(latin1_to_utf8(b"caf\xe9"), "café".as_bytes());
        assert_eq!(utf8_to_latin1("café".as_bytes()), b"caf\xe9");
        assert_eq!(utf8_to_latin1("日本".as_bytes()), b"??");
        assert_eq!(utf8_to_latin1(b"a\xffb"), b"a?b");
    }

    #[test]
    fn content_kinds_and_size() {
        let mut c = Content::default();
        assert!(c.is_empty());
        c.set(Kind::Html, b"<b>x</b>".to_vec());
        c.set(Kind::Text, b"x".to_vec());
        assert_eq!(c.kinds(), vec![Kind::Text, Kind::Html]);
        assert_eq!(c.len(), 9);
        assert_eq!(c.get(Kind::Png), None);
    }

    #[test]
    fn atoms_ignore_a_ragged_tail() {
        let mut bytes = Vec::new();
        bytes.extend(7u32.to_ne_bytes());
        bytes.extend(9u32.to_ne_bytes());
        bytes.push(1);
        assert_eq!(atoms_from_bytes(&bytes), vec![7, 9]);
    }
}

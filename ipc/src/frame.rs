//! Length-prefixed up frames: a little-endian `u32` payload length, then a postcard-encoded
//! [`UpFrame`]. The decoder never trusts the length prefix beyond [`MAX_FRAME_LEN`] and never
//! buffers more than one frame.

use crate::{UpFrame, MAX_FRAME_LEN};

/// Bytes in the length prefix.
pub const PREFIX_LEN: usize = 4;

/// Why an up frame was refused. Any of these ends the renderer that sent it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLong(usize),
    #[error("empty frame")]
    Empty,
    #[error("undecodable frame: {0}")]
    Malformed(String),
    #[error("frame has {0} trailing bytes after its message")]
    TrailingBytes(usize),
}

/// Encodes one frame, prefix included.
pub fn encode(frame: &UpFrame) -> Result<Vec<u8>, FrameError> {
    let payload = postcard::to_allocvec(frame).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if payload.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLong(payload.len()));
    }
    let mut out = Vec::with_capacity(PREFIX_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes one payload (without its prefix).
pub fn decode_payload(payload: &[u8]) -> Result<UpFrame, FrameError> {
    if payload.is_empty() {
        return Err(FrameError::Empty);
    }
    let (frame, rest) = postcard::take_from_bytes::<UpFrame>(payload)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(frame)
}

/// Reassembles frames from a byte stream. Feed it with [`FrameDecoder::push`], then drain it with
/// [`FrameDecoder::next_frame`] until it returns `Ok(None)`; it then holds at most one partial
/// frame, so its buffer stays under `PREFIX_LEN + MAX_FRAME_LEN` plus one read.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes waiting for the rest of their frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the reason the stream is
    /// bad. After an error the decoder must not be used again.
    pub fn next_frame(&mut self) -> Result<Option<UpFrame>, FrameError> {
        if self.buf.len() < PREFIX_LEN {
            return Ok(None);
        }
        let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLong(len));
        }
        if self.buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        let frame = decode_payload(&self.buf[PREFIX_LEN..PREFIX_LEN + len]);
        self.buf.drain(..PREFIX_LEN + len);
        frame.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RendererToBrowser, TabId};

    fn sample() -> UpFrame {
        UpFrame {
            tab_id: TabId(7),
            msg: RendererToBrowser::TitleChanged {
                title: "Grüße, 世界".into(),
            },
        }
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let bytes = encode(&sample()).unwrap();
        let mut d = FrameDecoder::new();
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(
                d.next_frame().unwrap(),
                None,
                "frame complete too early at byte {i}"
            );
            d.push(&[*b]);
        }
        assert_eq!(d.next_frame().unwrap(), Some(sample()));
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn several_frames_in_one_read() {
        let mut bytes = encode(&sample()).unwrap();
        let second = UpFrame {
            tab_id: TabId(7),
            msg: RendererToBrowser::Pong { seq: 3 },
        };
        bytes.extend(encode(&second).unwrap());
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        assert_eq!(d.next_frame().unwrap(), Some(sample()));
        assert_eq!(d.next_frame().unwrap(), Some(second));
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn oversized_prefix_is_refused_before_buffering() {
        let mut d = FrameDecoder::new();
        d.push(&u32::MAX.to_le_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::TooLong(u32::MAX as usize)));
        let mut d = FrameDecoder::new();
        d.push(&((MAX_FRAME_LEN + 1) as u32).to_le_bytes());
        assert!(matches!(d.next_frame(), Err(FrameError::TooLong(_))));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // Deterministic pseudo-random payloads of many lengths: decoding must return, never panic.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..2000usize {
            let payload: Vec<u8> = (0..len % 300)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = decode_payload(&payload);
        }
        assert_eq!(decode_payload(&[]), Err(FrameError::Empty));
    }

    #[test]
    fn huge_declared_string_length_does_not_allocate_it() {
        // Variant TitleChanged with a varint string length of ~4 GiB and no bytes behind it.
        let mut payload = vec![7u8, 3];
        payload.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            decode_payload(&payload),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        let len = (bytes.len() - PREFIX_LEN) as u32;
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        assert_eq!(d.next_frame(), Err(FrameError::TrailingBytes(1)));
    }
}

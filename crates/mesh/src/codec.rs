//! The request-response codec of the sync protocol `/buildmesh/sync/1`.
//!
//! A request and a response are each one frame: a `u32` big-endian length,
//! then that many bytes. The bytes are opaque here (they are a
//! `buildmesh_protocol::Request` or `Response`, decoded by the core). A
//! reader refuses a length above [`REQUEST_BYTES_MAX`] or
//! [`RESPONSE_BYTES_MAX`] as soon as it has read the 4-byte header, before
//! it reads or allocates anything for the body; a writer refuses to send
//! what the other side would refuse.

use buildmesh_protocol::{REQUEST_BYTES_MAX, RESPONSE_BYTES_MAX};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;
use std::io;

/// The protocol name negotiated on every sync stream.
pub(crate) const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/buildmesh/sync/1");

/// Length-prefixed raw bytes, both ways. Stateless.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SyncCodec;

/// Reads one frame of at most `max` bytes.
///
/// The body is read into a vector that grows with the bytes that actually
/// arrive, so a peer that announces a large frame and then stalls costs
/// nothing up front.
pub(crate) async fn read_frame<T>(io: &mut T, max: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut header = [0u8; 4];
    io.read_exact(&mut header).await?;
    let len = u32::from_be_bytes(header);
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {max} bytes"),
        ));
    }
    let mut body = Vec::new();
    let read = io.take(u64::from(len)).read_to_end(&mut body).await?;
    if read != len_usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame truncated: {read} of {len} bytes"),
        ));
    }
    Ok(body)
}

/// Writes one frame, refusing a body over `max` bytes.
pub(crate) async fn write_frame<T>(io: &mut T, bytes: &[u8], max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = match u32::try_from(bytes.len()) {
        Ok(len) if bytes.len() <= max => len,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to send a frame of {} bytes, over the limit of {max} bytes",
                    bytes.len()
                ),
            ));
        }
    };
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, REQUEST_BYTES_MAX).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, RESPONSE_BYTES_MAX).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, REQUEST_BYTES_MAX).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, RESPONSE_BYTES_MAX).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    fn frame(len: u32, body: &[u8]) -> Vec<u8> {
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn requests_and_responses_round_trip() {
        block_on(async {
            let mut codec = SyncCodec;
            for body in [Vec::new(), vec![7u8], vec![0xab; 70_000]] {
                let mut wire = Cursor::new(Vec::new());
                codec
                    .write_request(&SYNC_PROTOCOL, &mut wire, body.clone())
                    .await
                    .unwrap();
                codec
                    .write_response(&SYNC_PROTOCOL, &mut wire, body.clone())
                    .await
                    .unwrap();
                let bytes = wire.into_inner();
                assert_eq!(bytes.len(), 2 * (4 + body.len()));
                assert_eq!(&bytes[..4], &(body.len() as u32).to_be_bytes());

                let mut wire = Cursor::new(bytes);
                let request = codec.read_request(&SYNC_PROTOCOL, &mut wire).await;
                assert_eq!(request.unwrap(), body);
                let response = codec.read_response(&SYNC_PROTOCOL, &mut wire).await;
                assert_eq!(response.unwrap(), body);
            }
        });
    }

    #[test]
    fn largest_allowed_response_is_read() {
        block_on(async {
            let body = vec![1u8; RESPONSE_BYTES_MAX];
            let mut wire = Cursor::new(frame(RESPONSE_BYTES_MAX as u32, &body));
            let read = SyncCodec.read_response(&SYNC_PROTOCOL, &mut wire).await;
            assert_eq!(read.unwrap().len(), RESPONSE_BYTES_MAX);
        });
    }

    #[test]
    fn oversize_response_is_refused_after_the_header() {
        block_on(async {
            // A real frame one byte over the limit, body included.
            let body = vec![0u8; RESPONSE_BYTES_MAX + 1];
            let mut wire = Cursor::new(frame(body.len() as u32, &body));
            let error = SyncCodec
                .read_response(&SYNC_PROTOCOL, &mut wire)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            // Only the 4-byte header was consumed: the body was never read,
            // so nothing was allocated for it.
            assert_eq!(wire.position(), 4);
        });
    }

    #[test]
    fn absurd_length_is_refused_without_waiting_for_the_body() {
        block_on(async {
            // Claims 4 GiB and sends nothing more: refused as InvalidData,
            // not UnexpectedEof, so the reader never tried to fill it.
            let mut wire = Cursor::new(frame(u32::MAX, &[]));
            let error = SyncCodec
                .read_response(&SYNC_PROTOCOL, &mut wire)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert_eq!(wire.position(), 4);
        });
    }

    #[test]
    fn oversize_request_is_refused_but_same_size_response_is_not() {
        block_on(async {
            let len = REQUEST_BYTES_MAX + 1;
            let bytes = frame(len as u32, &vec![0u8; len]);
            let error = SyncCodec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(bytes.clone()))
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            let response = SyncCodec
                .read_response(&SYNC_PROTOCOL, &mut Cursor::new(bytes))
                .await;
            assert_eq!(response.unwrap().len(), len);
        });
    }

    #[test]
    fn truncated_frame_is_an_unexpected_eof() {
        block_on(async {
            let mut wire = Cursor::new(frame(10, &[1, 2, 3]));
            let error = SyncCodec
                .read_request(&SYNC_PROTOCOL, &mut wire)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
            let mut short_header = Cursor::new(vec![0u8, 0]);
            let error = SyncCodec
                .read_request(&SYNC_PROTOCOL, &mut short_header)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        });
    }

    #[test]
    fn writer_refuses_what_the_reader_would_refuse() {
        block_on(async {
            let mut wire = Cursor::new(Vec::new());
            let error = SyncCodec
                .write_request(&SYNC_PROTOCOL, &mut wire, vec![0; REQUEST_BYTES_MAX + 1])
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            assert!(wire.into_inner().is_empty(), "nothing was written");
        });
    }
}

//! TCP connections that can be cut one at a time. socketioxide has no public way to
//! close one Socket.IO websocket's transport without a Socket.IO `disconnect` packet
//! (after which clients do not reconnect), so the connection drain cuts the TCP
//! connection under it instead: the client sees "transport close" and reconnects.
//!
//! Every request carries the [`ConnectionHandle`] of its connection as an extension,
//! next to the usual `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::middleware::AddExtension;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Cuts one connection; clones refer to the same connection.
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    cut: CancellationToken,
    closed: CancellationToken,
}

impl ConnectionHandle {
    /// Fails every further read and write: the server side drops the connection.
    pub fn cut(&self) {
        self.cut.cancel();
    }

    /// The connection is gone (its stream was dropped).
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }
}

/// A [`TcpListener`] whose connections can be cut.
pub struct CuttableListener(TcpListener);

impl CuttableListener {
    pub fn new(listener: TcpListener) -> Self {
        CuttableListener(listener)
    }
}

impl axum::serve::Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (CuttableStream::new(stream), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

pub struct CuttableStream {
    inner: TcpStream,
    handle: ConnectionHandle,
    /// Registers the task's waker, so a read or write pending when `cut` fires wakes up.
    on_cut: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl CuttableStream {
    fn new(inner: TcpStream) -> Self {
        let handle = ConnectionHandle {
            cut: CancellationToken::new(),
            closed: CancellationToken::new(),
        };
        let on_cut = Box::pin(handle.cut.clone().cancelled_owned());
        CuttableStream {
            inner,
            handle,
            on_cut,
        }
    }

    pub fn handle(&self) -> ConnectionHandle {
        self.handle.clone()
    }

    /// True once cut; never polls the finished future again.
    fn is_cut(&mut self, cx: &mut Context<'_>) -> bool {
        self.handle.cut.is_cancelled() || self.on_cut.as_mut().poll(cx).is_ready()
    }
}

fn cut_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "connection cut by drain")
}

impl Drop for CuttableStream {
    fn drop(&mut self) {
        self.handle.closed.cancel();
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_cut(cx) {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Per-connection service: the router with the peer address and the connection handle.
#[derive(Clone)]
pub struct WithConnection(pub Router);

type Connected = AddExtension<AddExtension<Router, ConnectInfo<SocketAddr>>, ConnectionHandle>;

impl tower::Service<IncomingStream<'_, CuttableListener>> for WithConnection {
    type Response = Connected;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Connected, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, CuttableListener>) -> Self::Future {
        let with_addr = axum::Extension(ConnectInfo(*stream.remote_addr()));
        let with_handle = axum::Extension(stream.io().handle());
        std::future::ready(Ok(tower::Layer::layer(
            &with_handle,
            tower::Layer::layer(&with_addr, self.0.clone()),
        )))
    }
}

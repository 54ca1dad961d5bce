//! TCP whose outgoing connections always come from a port of their own.
//!
//! libp2p's TCP transport binds a dial to the node's listen port when the
//! swarm asks for port reuse, which it does by default (it helps NAT hole
//! punching, which buildmesh does not do). Two nodes that dial each other
//! at the same moment then both send a SYN for the same pair of addresses,
//! and TCP's simultaneous open joins them into one connection on which
//! both sides act as the dialer: both propose noise as initiator, the
//! handshake fails, and the next attempt, made on the same schedule by
//! both, crosses again. Kademlia makes such crossed dials common (two
//! nodes learn of each other from one query), and the mesh tests saw
//! peers that never connected. A fresh port per dial makes two crossed
//! dials two connections, which the swarm handles like any other pair.

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{
    Boxed, DialOpts, ListenerId, PortUse, Transport, TransportError, TransportEvent,
};
use libp2p::core::upgrade::Version;
use libp2p::{Multiaddr, PeerId, identity, noise, tcp, yamux};
use std::pin::Pin;
use std::task::{Context, Poll};

/// TCP, noise and yamux, as `SwarmBuilder::with_tcp` would build them, but
/// dialing from fresh ports (see the module docs).
/// The error is boxed because that is the one error type
/// `SwarmBuilder::with_other_transport` takes.
pub(crate) fn transport(
    key: &identity::Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    Ok(FreshPorts(tcp)
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

/// Wraps a transport and asks it for a new local port on every dial.
struct FreshPorts<T>(T);

impl<T: Transport + Unpin> Transport for FreshPorts<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.0.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let opts = DialOpts {
            port_use: PortUse::New,
            ..opts
        };
        self.0.dial(addr, opts)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use libp2p::core::Endpoint;
    use std::future::poll_fn;
    use std::time::Duration;

    /// Listens on a fresh loopback port and returns the address.
    async fn listen<T: Transport + Unpin>(transport: &mut T) -> Multiaddr
    where
        T::Error: std::fmt::Debug,
    {
        let addr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
        transport.listen_on(ListenerId::next(), addr).ok().unwrap();
        let address = async {
            loop {
                match poll_fn(|cx| Pin::new(&mut *transport).poll(cx)).await {
                    TransportEvent::NewAddress { listen_addr, .. } => return listen_addr,
                    other => eprintln!("listener event: {other:?}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), address)
            .await
            .unwrap_or_else(|_| panic!("no listen address in 10 s"))
    }

    /// The address the listener `to` sees a dial from `from` come from,
    /// when the swarm asks for port reuse as it does by default. Fails,
    /// rather than hangs, if the dial fails or nothing comes in 10 s.
    async fn seen_from<T: Transport + Unpin>(from: &mut T, to: &mut T) -> Multiaddr
    where
        T::Error: std::fmt::Debug,
    {
        let target = listen(to).await;
        let opts = DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        };
        let dial = from.dial(target.clone(), opts).ok().unwrap();
        let accept = async {
            loop {
                match poll_fn(|cx| Pin::new(&mut *to).poll(cx)).await {
                    TransportEvent::Incoming { send_back_addr, .. } => return send_back_addr,
                    other => eprintln!("listener event: {other:?}"),
                }
            }
        };
        let dial = async {
            match dial.await {
                // Kept until the listener has seen it.
                Ok(stream) => stream,
                Err(error) => panic!("the dial to {target} failed: {error:?}"),
            }
        };
        let both = async { futures::join!(dial, accept) };
        let (_stream, seen) = tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .unwrap_or_else(|_| panic!("no connection reached {target} in 10 s"));
        seen
    }

    #[tokio::test]
    async fn a_dial_never_comes_from_the_listen_port() {
        let plain = || tcp::tokio::Transport::new(tcp::Config::default());
        // Control: libp2p's TCP alone binds the dial to the listen port,
        // which is what makes crossed dials one broken connection.
        {
            let (mut a, mut b) = (plain(), plain());
            let a_listens = listen(&mut a).await;
            assert_eq!(seen_from(&mut a, &mut b).await, a_listens);
        }
        let (mut a, mut b) = (FreshPorts(plain()), FreshPorts(plain()));
        let a_listens = listen(&mut a).await;
        assert_ne!(seen_from(&mut a, &mut b).await, a_listens);
    }
}

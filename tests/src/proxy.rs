//! A TCP proxy a test puts between a client and one server, to cut the
//! connection the way networks fail: closed at once (a restart, a reset) or
//! silently stalled (a partition, where nothing arrives and nothing closes).

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Passes everything both ways.
    Up,
    /// Closes every connection and refuses new ones at once.
    Cut,
    /// Keeps connections open and passes nothing, either way, until healed.
    Stalled,
}

/// One listening port forwarding to one server.
pub struct Proxy {
    /// The port clients connect to, on 127.0.0.1.
    pub port: u16,
    link: Arc<watch::Sender<Link>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a free port and forwards to `upstream` (`127.0.0.1:4222`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        let link = Arc::new(watch::Sender::new(Link::Up));
        let task = tokio::spawn(accept(listener, upstream, link.clone()));
        Proxy { port, link, task }
    }

    /// Its address as a NATS URL.
    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Changes what happens to traffic from now on.
    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

async fn accept(listener: TcpListener, upstream: String, link: Arc<watch::Sender<Link>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let mut state = link.subscribe();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            // A stalled link holds new connections too, unanswered.
            let Ok(now) = state.wait_for(|l| *l != Link::Stalled).await.map(|l| *l) else {
                return;
            };
            if now == Link::Cut {
                return;
            }
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            relay(client, server, state).await;
        });
    }
}

/// Copies both ways until either side closes or the link is cut; while it
/// is stalled, reads nothing (the sockets' buffers fill and senders wait).
async fn relay(client: TcpStream, server: TcpStream, state: watch::Receiver<Link>) {
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::select! {
        _ = pump(cr, sw, state.clone()) => {}
        _ = pump(sr, cw, state.clone()) => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut state: watch::Receiver<Link>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let now = *state.borrow_and_update();
        match now {
            Link::Cut => return,
            Link::Stalled => {
                if state.changed().await.is_err() {
                    return;
                }
                continue;
            }
            Link::Up => {}
        }
        tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

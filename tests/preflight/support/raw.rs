//! Raw TCP servers for peers that misbehave below any protocol library: each connection is
//! handed to a closure on its own thread.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

/// A TCP server on 127.0.0.1 that hands each connection to `talk` on its own thread.
pub(crate) fn raw_server(talk: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let talk = Arc::new(talk);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let talk = talk.clone();
            std::thread::spawn(move || talk(stream));
        }
    });
    addr
}

/// Reads what the client sent first (a ClientHello, a request head).
pub(crate) fn read_some(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = stream.read(&mut buf);
}

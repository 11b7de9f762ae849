//! `bank-api healthcheck`: asks the running server's `/health` over loopback and exits 0 if it
//! answers 200. It lets a container HEALTHCHECK work without curl in the image.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

pub fn check(port: u16) -> Result<(), String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = Duration::from_secs(3);
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("{address}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut status_line = [0_u8; 12];
    stream
        .read_exact(&mut status_line)
        .map_err(|e| e.to_string())?;
    match &status_line {
        b"HTTP/1.1 200" => Ok(()),
        other => Err(format!("unhealthy: {}", String::from_utf8_lossy(other))),
    }
}

//! AF_UNIX without sleeping (non-blocking calls only: unit tests run off any CPU): streams,
//! datagrams, names, and descriptors in flight — counted, released with their queue, and
//! collected from a cycle.

use std::sync::Arc;

use super::*;
use crate::abi::net::MsgFlags;
use crate::fs::file::{File, O_RDWR};
use crate::kern::cred::Cred;
use crate::net::file::SocketFile;
use crate::net::{NoPaths, SendArgs};

fn caller() -> Caller<'static> {
    Caller { pid: 7, uid: 0, gid: 0, cred: Arc::new(Cred::root()), paths: &NoPaths }
}

fn send(s: &SocketRef, data: &[u8], rights: Vec<Arc<File>>) -> Result<usize, Errno> {
    s.send(&caller(), SendArgs { data, rights, nonblock: true, ..SendArgs::default() })
}

fn recv(s: &SocketRef, len: usize) -> Result<Received, Errno> {
    s.recv(len, MsgFlags::empty(), true)
}

fn file_of(s: &SocketRef) -> Arc<File> {
    File::new(SocketFile::vnode(Arc::clone(s), 0, 0), None, O_RDWR)
}

#[test]
fn stream_pair_moves_bytes_and_reports_readiness() {
    let (a, b) = pair(&caller(), SockType::Stream, 0).unwrap();
    assert_eq!(b.poll() & (POLLIN | POLLOUT), POLLOUT);
    assert_eq!(send(&a, b"hello ", vec![]), Ok(6));
    assert_eq!(send(&a, b"world", vec![]), Ok(5));
    assert_eq!(b.poll() & POLLIN, POLLIN);
    assert_eq!(b.queued(false), Ok(11));
    assert_eq!(recv(&b, 3).unwrap().data, b"hel");
    assert_eq!(recv(&b, 64).unwrap().data, b"lo world");
    assert_eq!(recv(&b, 64).map(|r| r.data), Err(Errno::EAGAIN));
    a.release();
    assert_eq!(b.poll() & (POLLHUP | POLLRDHUP), POLLHUP | POLLRDHUP);
    assert_eq!(recv(&b, 64).unwrap().data, b"");
    assert_eq!(send(&b, b"x", vec![]), Err(Errno::EPIPE));
    b.release();
}

#[test]
fn datagrams_keep_their_boundaries() {
    let (a, b) = pair(&caller(), SockType::Dgram, 0).unwrap();
    send(&a, b"one", vec![]).unwrap();
    send(&a, b"second", vec![]).unwrap();
    let r = recv(&b, 64).unwrap();
    assert_eq!((r.data.as_slice(), r.full_len), (&b"one"[..], 3));
    let r = recv(&b, 2).unwrap();
    assert_eq!((r.data.as_slice(), r.full_len, r.flags), (&b"se"[..], 6, MsgFlags::TRUNC));
    a.release();
    b.release();
}

#[test]
fn abstract_names_are_taken_once() {
    let c = caller();
    let x = create(SockType::Dgram, 0).unwrap();
    let y = create(SockType::Dgram, 0).unwrap();
    let name = SockAddr::Unix(UnixAddr::Abstract(b"vk-unit-name".to_vec()));
    assert_eq!(x.bind(&c, &name), Ok(()));
    assert_eq!(y.bind(&c, &name), Err(Errno::EADDRINUSE));
    assert_eq!(x.bind(&c, &SockAddr::Unix(UnixAddr::Abstract(b"other".to_vec()))), Err(Errno::EINVAL));
    assert!(names::abstract_taken(b"vk-unit-name"));
    x.release();
    assert!(!names::abstract_taken(b"vk-unit-name"));
    assert_eq!(y.bind(&c, &name), Ok(()));
    y.release();
}

/// Descriptors in flight: counted while queued, released with the queue, and a cycle (each
/// socket of a pair sent over itself, so each sits in the other's queue) collected.
#[test]
fn files_in_flight_are_counted_released_and_collected() {
    let before = inflight_count();
    // Released with the queue.
    let (a, b) = pair(&caller(), SockType::Stream, 0).unwrap();
    let (p, q) = pair(&caller(), SockType::Stream, 0).unwrap();
    let fp = file_of(&p);
    let weak_p = Arc::downgrade(&p);
    drop(p);
    assert_eq!(send(&a, b"x", vec![Arc::clone(&fp)]), Ok(1));
    assert_eq!(inflight_count(), before + 1);
    drop(fp);
    assert!(weak_p.upgrade().is_some(), "the queue holds the file");
    a.release();
    b.release();
    drop((a, b));
    assert_eq!(inflight_count(), before);
    // Its peer's link goes when the peer is closed too.
    q.release();
    drop(q);
    assert!(weak_p.upgrade().is_none(), "released with the queue");

    // A cycle.
    let (x, y) = pair(&caller(), SockType::Stream, 0).unwrap();
    let (fx, fy) = (file_of(&x), file_of(&y));
    let (wx, wy) = (Arc::downgrade(&x), Arc::downgrade(&y));
    assert_eq!(send(&x, b"c", vec![Arc::clone(&fx)]), Ok(1));
    assert_eq!(send(&y, b"d", vec![Arc::clone(&fy)]), Ok(1));
    drop((x, y, fx, fy));
    assert!(wx.upgrade().is_some() && wy.upgrade().is_some(), "only the cycle holds them");
    assert_eq!(inflight_count(), before + 2);
    assert!(gc_collect() >= 1);
    assert!(wx.upgrade().is_none() && wy.upgrade().is_none(), "collected");
    assert_eq!(inflight_count(), before);
}

//! Answers to requests that do not say which request they answer: a
//! refusal or a failure while several requests are out to one peer must
//! never get that peer, honest, counted for the answers still to come.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::MemStore;
use buildmesh_core::replicator::{Action, Input, PeerId, Replicator, ReplicatorConfig};
use buildmesh_protocol::{BlobHash, Refusal, Request, Response, Timestamp};
use ed25519_dalek::SigningKey;
use fixtures::seed_of;

const NOW: Timestamp = Timestamp(1_000_000);

/// A node connected to `peer`, with a sync and a blob request out to it.
fn two_requests_out() -> (Replicator<MemStore>, PeerId) {
    let key = SigningKey::from_bytes(&seed_of("asker"));
    let peer: PeerId = SigningKey::from_bytes(&seed_of("peer"))
        .verifying_key()
        .into();
    let mut node =
        Replicator::new(ReplicatorConfig::default(), key, MemStore::default(), 7).unwrap();
    node.handle(NOW, Input::PeerConnected(peer)).unwrap();
    node.fetch_blob(NOW, BlobHash::of(b"a log"));
    let mut out = Vec::new();
    while let Some(action) = node.poll_action() {
        if let Action::Request { bytes, .. } = action {
            out.push(Request::decode(&bytes).unwrap());
        }
    }
    assert!(
        out.iter().any(|r| matches!(r, Request::Sync { .. })),
        "{out:?}"
    );
    assert!(out.iter().any(|r| matches!(r, Request::Blob(_))), "{out:?}");
    (node, peer)
}

fn answer(node: &mut Replicator<MemStore>, peer: PeerId, response: Response) {
    let bytes = response.encode();
    node.handle(NOW, Input::ResponseReceived { peer, bytes })
        .unwrap();
    while node.poll_action().is_some() {}
}

fn sync_done() -> Response {
    Response::Sync {
        entries: Vec::new(),
        resume: None,
        leases: Vec::new(),
    }
}

/// The peer refuses one request for rate (which one, it cannot say), then
/// answers the other: no offence.
#[test]
fn a_refusal_then_the_other_answer_is_no_offence() {
    for late in [sync_done(), Response::Blob(None)] {
        let (mut node, peer) = two_requests_out();
        answer(&mut node, peer, Response::Refused(Refusal::RateLimited));
        answer(&mut node, peer, late.clone());
        assert_eq!(node.stats().offences, 0, "{late:?}");
    }
}

/// One request fails in transport (a timeout), and the other's answer
/// comes after: no offence either.
#[test]
fn a_failed_request_then_the_other_answer_is_no_offence() {
    let (mut node, peer) = two_requests_out();
    node.handle(NOW, Input::RequestFailed(peer)).unwrap();
    answer(&mut node, peer, sync_done());
    assert_eq!(node.stats().offences, 0);
}

/// What is written off is what was out: an answer nobody asked for still
/// counts against the peer.
#[test]
fn an_answer_beyond_those_out_is_still_an_offence() {
    let (mut node, peer) = two_requests_out();
    answer(&mut node, peer, Response::Refused(Refusal::RateLimited));
    answer(&mut node, peer, sync_done());
    answer(&mut node, peer, sync_done());
    assert_eq!(node.stats().offences, 1);
}

/// The late answer to a blob request written off arrives after a new blob
/// request went out to the same peer: it is not taken as the new one's
/// answer, so the honest peer is not struck for a wrong blob.
#[test]
fn a_late_blob_answer_after_a_new_blob_request_is_no_offence() {
    let (mut node, peer) = two_requests_out();
    answer(&mut node, peer, Response::Refused(Refusal::RateLimited));
    node.fetch_blob(NOW, BlobHash::of(b"another log"));
    let mut asked = Vec::new();
    while let Some(action) = node.poll_action() {
        if let Action::Request { bytes, .. } = action {
            asked.push(Request::decode(&bytes).unwrap());
        }
    }
    assert!(
        asked.iter().any(|r| matches!(r, Request::Blob(_))),
        "{asked:?}"
    );
    answer(&mut node, peer, Response::Blob(Some(b"a log".to_vec())));
    assert_eq!(node.stats().offences, 0);
}

/// A peer that answers every blob request but never the sync: the sync is
/// given up after the stall time, and a new one goes out, however much
/// blob traffic keeps the peer busy (one clock per kind of request).
#[test]
fn answered_blob_requests_do_not_hide_a_stalled_sync() {
    let (mut node, peer) = two_requests_out();
    let config = ReplicatorConfig::default();
    let end = NOW.plus_ms(config.request_stall_ms + config.sync_interval_ms + 5_000);
    let mut now = NOW;
    let mut asked_sync_again = false;
    let mut i = 0u32;
    while now < end && !asked_sync_again {
        now = now.plus_ms(1_000);
        i += 1;
        let bytes = Response::Blob(None).encode();
        node.handle(now, Input::ResponseReceived { peer, bytes })
            .unwrap();
        node.fetch_blob(now, BlobHash::of(&i.to_le_bytes()));
        node.handle(now, Input::Tick).unwrap();
        while let Some(action) = node.poll_action() {
            if let Action::Request { bytes, .. } = action {
                asked_sync_again |= matches!(Request::decode(&bytes), Ok(Request::Sync { .. }));
            }
        }
    }
    assert!(asked_sync_again, "the stalled sync was never given up");
    assert_eq!(node.stats().offences, 0);
}

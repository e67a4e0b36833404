//! Channel groups: one message to many channels (chat rooms, dashboards), encoded once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use bytes::Bytes;

use crate::channel::Channel;
use crate::deflate::FrameCache;
use crate::ws::Message;
use crate::Response;

/// What a broadcast does with a member whose write buffer is full (a client that reads slower
/// than the group sends). Never does the broadcaster wait for it, and never does one slow
/// member hold back the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// The member misses this message and stays (the default: a live feed where the next
    /// message supersedes this one).
    #[default]
    Skip,
    /// The member is closed (WebSocket close `1013`, "try again later"): a client that cannot
    /// keep up must reconnect and catch up, e.g. a chat whose history matters.
    Close,
}

/// What one broadcast did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Broadcast {
    /// Members the message was queued for.
    pub sent: usize,
    /// Members that missed it: their buffer was full ([`WhenFull::Skip`]), or a WebSocket
    /// still in its handshake.
    pub skipped: usize,
    /// Members closed because their buffer was full ([`WhenFull::Close`]).
    pub closed_full: usize,
    /// Members found closed (they leave the group by themselves).
    pub gone: usize,
}

/// A set of channels to broadcast to. Channels [`join`](ChannelGroup::join) it and leave by
/// themselves when they close; [`broadcast`](ChannelGroup::broadcast) queues one message for
/// every member without waiting for any of them, encoded once for all WebSocket members (they
/// share the same frame bytes). Cheap to clone: clones are the same group.
///
/// ```no_run
/// use httpkit::{as_channel, ChannelGroup, ChannelHandlers, Request};
/// let room = ChannelGroup::new();
/// let (r1, r2) = (room.clone(), room.clone());
/// let handlers = ChannelHandlers::new()
///     .on_open(move |ch| { r1.join(ch); })
///     .on_receive(move |_ch, msg| { r2.broadcast(msg.to_text()); });
/// let server = httpkit::run_server(move |req: Request| as_channel(&req, handlers.clone()),
///     httpkit::Options::default())?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct ChannelGroup {
    inner: Arc<GroupShared>,
}

#[derive(Default)]
pub(crate) struct GroupShared {
    members: RwLock<HashMap<u64, Channel>>,
    when_full: WhenFull,
}

impl GroupShared {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<u64, Channel>> {
        self.members.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<u64, Channel>> {
        self.members.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A member closed: it leaves (called by the channel).
    pub(crate) fn remove(&self, id: u64) {
        self.write().remove(&id);
    }
}

impl std::fmt::Debug for ChannelGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelGroup").field("len", &self.len()).field("when_full", &self.inner.when_full).finish()
    }
}

impl ChannelGroup {
    /// An empty group that skips members whose buffer is full.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty group with the given policy for members whose buffer is full.
    pub fn when_full(policy: WhenFull) -> Self {
        Self { inner: Arc::new(GroupShared { members: RwLock::default(), when_full: policy }) }
    }

    /// Adds `ch`; `false` if it is closed already (it is not added) or a member already.
    pub fn join(&self, ch: &Channel) -> bool {
        if !ch.is_open() {
            return false;
        }
        if self.inner.write().insert(ch.id(), ch.clone()).is_some() {
            return false;
        }
        // The channel removes itself when it closes; if it closed meanwhile, it may have looked
        // before this group was on its list: then this removes it.
        if !ch.remember_group(Arc::downgrade(&self.inner)) {
            self.inner.remove(ch.id());
            return false;
        }
        true
    }

    /// Removes `ch`; `false` if it was not a member.
    pub fn leave(&self, ch: &Channel) -> bool {
        self.inner.write().remove(&ch.id()).is_some()
    }

    /// Whether `ch` is a member.
    pub fn contains(&self, ch: &Channel) -> bool {
        self.inner.read().contains_key(&ch.id())
    }

    /// How many members the group has.
    pub fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// Whether the group has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `msg` for every member, waiting for none; says what happened. WebSocket members
    /// share one encoding of the frame (a member's own buffer counts it, nothing is copied per
    /// member); an HTTP member (a long-poll) is answered with it and closes, as
    /// [`Channel::send`] does. A member whose buffer is full is skipped or closed (see
    /// [`WhenFull`]). A [`Response`] message is sent with its in-memory body (a file or
    /// streamed body is not read for a broadcast: it is sent empty).
    pub fn broadcast(&self, msg: impl Into<Message>) -> Broadcast {
        let msg = msg.into();
        let mut report = Broadcast::default();
        let mut frames = FrameCache::default();
        // A snapshot: sending may close a member (an answered long-poll, a full one), which
        // then leaves the group, taking its lock.
        let members: Vec<Channel> = self.inner.read().values().cloned().collect();
        for ch in &members {
            if !ch.is_open() {
                report.gone += 1;
                continue;
            }
            if ch.is_full() {
                match self.inner.when_full {
                    WhenFull::Skip => report.skipped += 1,
                    WhenFull::Close => {
                        let _ = ch.close_with(1013, "too slow for the broadcast");
                        report.closed_full += 1;
                    }
                }
                continue;
            }
            let sent = if ch.is_websocket() {
                match ch.send_broadcast(&msg, &mut frames) {
                    Some(sent) => sent,
                    None => {
                        report.skipped += 1;
                        continue;
                    }
                }
            } else {
                ch.send(copy_message(&msg))
            };
            if sent {
                report.sent += 1;
            } else {
                report.gone += 1;
            }
        }
        report
    }
}

/// The same message again, for another HTTP member (in-memory bodies only).
fn copy_message(msg: &Message) -> Message {
    match msg {
        Message::Text(s) => Message::Text(s.clone()),
        Message::Binary(b) => Message::Binary(b.clone()),
        Message::Response(r) => {
            let body = r.body().as_bytes().map(Bytes::copy_from_slice).unwrap_or_default();
            let mut copy = Response::status_code(r.status()).with_body(body);
            *copy.headers_mut() = r.headers().clone();
            Message::Response(Box::new(copy))
        }
    }
}

/// The groups a channel is in (kept by the channel, so that it leaves them when it closes).
pub(crate) type Groups = std::sync::Mutex<Vec<Weak<GroupShared>>>;

//! Events about NamespaceOffloadings (`kubectl describe nsoff`), one per notice.
//!
//! kube-runtime's `Recorder` folds events with the same type, reason and object into a series
//! and keeps the first one's note, so three `TwinReady` notices of one reconcile (one per
//! cluster) read as the first cluster's message three times. It also keeps every event it
//! published for minutes and sweeps that cache on every publish, which at thousands of
//! objects costs memory and a scan per event. The reconciler publishes notices only on
//! transitions, so there is nothing worth folding: each notice is one `events.k8s.io/v1` Event
//! with its own message, and nothing is kept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;

use super::plan::Notice;

/// The longest note the API server accepts is 1 kB.
const NOTE_CHARS: usize = 1000;

/// Publishes notices as Events.
pub struct Events {
    client: Client,
    controller: String,
    instance: String,
    /// Makes names unique among events created in the same nanosecond.
    sequence: AtomicU64,
}

impl Events {
    /// Events reported by `controller` (this replica: `instance`).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Events {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            sequence: AtomicU64::new(0),
        }
    }

    /// The Event for `notice` about `regarding`, at `now`.
    pub fn event(&self, regarding: &ObjectReference, notice: &Notice, now: Timestamp) -> Event {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) & 0xffff;
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:x}{sequence:04x}", now.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some("Reconcile".to_owned()),
            reason: Some(notice.reason.to_owned()),
            note: Some(notice.message.chars().take(NOTE_CHARS).collect()),
            type_: Some(if notice.warning { "Warning" } else { "Normal" }.to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }

    /// Publishes `notice` about `regarding` (best effort: a failure is the caller's to log).
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        notice: &Notice,
    ) -> Result<(), kube::Error> {
        let event = self.event(regarding, notice, Timestamp::now());
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        api.create(&PostParams::default(), &event).await?;
        Ok(())
    }
}

/// Notices waiting to be published, and the task that publishes them.
///
/// Reconciles hand their notices over and go on: an Event is worth a write, not a wait, and
/// four of them after a reconcile of three clusters used to double its time. The queue is
/// bounded; when it is full (the API server refuses or is slow) a notice is dropped and
/// logged, never held in memory without bound.
#[derive(Clone)]
pub struct EventQueue {
    sender: mpsc::Sender<(ObjectReference, Notice)>,
}

impl EventQueue {
    /// Starts the publisher: at most `capacity` notices wait, `in_flight` are written at
    /// once. It ends when every queue handle is dropped.
    pub fn start(events: Events, capacity: usize, in_flight: usize) -> (Self, JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::channel::<(ObjectReference, Notice)>(capacity);
        let events = Arc::new(events);
        let task = tokio::spawn(async move {
            futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
                .for_each_concurrent(in_flight, |(regarding, notice)| {
                    let events = events.clone();
                    async move {
                        if let Err(e) = events.publish(&regarding, &notice).await {
                            tracing::warn!(error = %e, reason = notice.reason, "cannot publish an event");
                        }
                    }
                })
                .await;
        });
        (EventQueue { sender }, task)
    }

    /// Queues `notice` about `regarding`; dropped (and logged) when the queue is full.
    pub fn send(&self, regarding: &ObjectReference, notice: &Notice) {
        if self
            .sender
            .try_send((regarding.clone(), notice.clone()))
            .is_err()
        {
            tracing::warn!(
                reason = notice.reason,
                "event queue full or closed; event dropped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(reason: &'static str, message: &str) -> Notice {
        Notice {
            warning: reason == "TwinFailed",
            reason,
            message: message.to_owned(),
        }
    }

    #[tokio::test]
    async fn each_notice_is_an_event_of_its_own_with_its_own_note() {
        let (client, _server) = {
            let (svc, handle) = tower_test::mock::pair::<
                http::Request<kube::client::Body>,
                http::Response<kube::client::Body>,
            >();
            (Client::new(svc, "default"), handle)
        };
        let events = Events::new(client, "nsoffload", "replica-1");
        let regarding = ObjectReference {
            name: Some("offloading".to_owned()),
            namespace: Some("shop".to_owned()),
            ..ObjectReference::default()
        };
        let now: Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        let a = events.event(&regarding, &notice("TwinReady", "ready on r1"), now);
        let b = events.event(&regarding, &notice("TwinReady", "ready on r2"), now);
        assert_ne!(a.metadata.name, b.metadata.name);
        assert_eq!(a.note.as_deref(), Some("ready on r1"));
        assert_eq!(b.note.as_deref(), Some("ready on r2"));
        assert_eq!(a.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(a.type_.as_deref(), Some("Normal"));
        let long = events.event(&regarding, &notice("TwinFailed", &"x".repeat(5000)), now);
        assert_eq!(long.type_.as_deref(), Some("Warning"));
        assert_eq!(long.note.map(|n| n.len()), Some(1000));
    }

    #[tokio::test]
    async fn queued_notices_are_published_and_a_full_queue_drops_instead_of_waiting() {
        let (svc, mut server) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let events = Events::new(Client::new(svc, "default"), "nsoffload", "replica-1");
        let (queue, publisher) = EventQueue::start(events, 2, 1);
        let regarding = ObjectReference {
            name: Some("offloading".to_owned()),
            namespace: Some("shop".to_owned()),
            ..ObjectReference::default()
        };
        // One is written (and held unanswered), two wait, the rest are dropped at once.
        for i in 0..6 {
            queue.send(&regarding, &notice("TwinReady", &format!("ready on r{i}")));
        }
        let (request, respond) = server.next_request().await.expect("an event is written");
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(
            request.uri().path(),
            "/apis/events.k8s.io/v1/namespaces/shop/events"
        );
        let created = http::Response::builder()
            .status(201)
            .body(kube::client::Body::from(b"{}".to_vec()))
            .unwrap();
        respond.send_response(created);
        drop(queue);
        let mut written = 1;
        while let Some((_, respond)) = server.next_request().await {
            written += 1;
            let created = http::Response::builder()
                .status(201)
                .body(kube::client::Body::from(b"{}".to_vec()))
                .unwrap();
            respond.send_response(created);
        }
        publisher.await.unwrap();
        assert!((2..=3).contains(&written), "{written} events written");
    }
}

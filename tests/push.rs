//! `opencti::protocol::push::Pusher` on the real RabbitMQ: the pieces of a level in flight
//! together, a level only after the levels before it were confirmed, a nacked piece
//! published again (and only it), a piece refused as many times as the pusher tries
//! (`ATTEMPTS` in `src/opencti/protocol/push.rs`, 5) reported with its sequence.

use ivre_connector::opencti::protocol::push::{Piece, PushError, Pusher};
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use opencti_double::amqp_url_from_env;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A private exchange and queue (`max_length`: the queue refuses publishes beyond it).
struct Target {
    connection: Connection,
    channel: Channel,
    exchange: String,
    queue: String,
}

impl Target {
    async fn new(name: &str, max_length: Option<i64>) -> Target {
        let connection = Connection::connect(&amqp_url_from_env(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let suffix = format!("{name}-{}", std::process::id());
        let exchange = format!("test-push-{suffix}");
        let queue = format!("test-push-q-{suffix}");
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut arguments = FieldTable::default();
        if let Some(max) = max_length {
            arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(max));
            arguments.insert(
                "x-overflow".into(),
                AMQPValue::LongString("reject-publish".into()),
            );
        }
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                arguments,
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "pieces".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Target {
            connection,
            channel,
            exchange,
            queue,
        }
    }

    fn pusher(&self) -> Pusher {
        let uri: AMQPUri = amqp_url_from_env().parse().unwrap();
        Pusher::new(
            uri,
            self.exchange.clone(),
            "pieces".into(),
            Duration::from_millis(20),
            2,
        )
    }

    /// Takes `n` messages off the queue, as they arrive.
    async fn take(&self, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut out = Vec::new();
        while out.len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {out:?} in time"
            );
            match self
                .channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                Some(message) => out.push(String::from_utf8(message.delivery.data).unwrap()),
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        out
    }

    async fn delete(self) {
        let _ = self
            .channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.connection.close(200, "OK".into()).await;
    }
}

fn pieces(levels: &[u64]) -> Vec<Piece> {
    levels
        .iter()
        .enumerate()
        .map(|(i, &level)| Piece {
            level,
            body: format!("{}:{level}", i + 1).into_bytes(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_arrive_in_order_once_each() {
    let target = Target::new("order", None).await;
    let pusher = target.pusher();
    let levels = [1, 2, 2, 2, 2, 6, 6, 7];
    // Two bundles at once on the same pusher: each keeps its order.
    let bundle = pieces(&levels);
    let (a, b) = tokio::join!(pusher.publish(&bundle), pusher.publish(&bundle));
    a.unwrap();
    b.unwrap();
    let got = target.take(2 * levels.len()).await;
    let expected: Vec<String> = pieces(&levels)
        .into_iter()
        .map(|p| String::from_utf8(p.body).unwrap())
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    let mut twice: Vec<String> = expected.iter().chain(&expected).cloned().collect();
    twice.sort();
    assert_eq!(sorted, twice, "every piece once per bundle");
    // Interleaved, but in order within each bundle: the first occurrences, then the second.
    let mut seen = std::collections::HashMap::new();
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    for m in got {
        let n = seen.entry(m.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            firsts.push(m)
        } else {
            seconds.push(m)
        }
    }
    assert_eq!(firsts, expected);
    assert_eq!(seconds, expected);
    target.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_piece_is_retried_alone_then_reported() {
    // The queue takes one message and refuses (nacks) the others.
    let target = Target::new("nack", Some(1)).await;
    let pusher = target.pusher();
    let err = pusher.publish(&pieces(&[1, 2, 2])).await.unwrap_err();
    assert!(
        matches!(
            err,
            PushError::Refused {
                sequence: 2,
                attempts: 5
            }
        ),
        "{err:?}"
    );
    // Level 2 was never sent before level 1 was confirmed, and nothing was sent twice.
    assert_eq!(target.take(1).await, ["1:1"]);
    let state = target
        .channel
        .queue_declare(
            target.queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(state.message_count(), 0);
    target.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_while_the_queue_drains_end_in_order_without_duplicates() {
    // One message at a time: most pieces are refused at first, then accepted as the queue
    // drains; levels stay in order and no accepted piece is sent again.
    let target = Target::new("drain", Some(1)).await;
    let pusher = target.pusher();
    let levels = [1, 2, 2, 3];
    let bundle = pieces(&levels);
    let (published, got) = tokio::join!(pusher.publish(&bundle), async {
        let mut got = Vec::new();
        for _ in 0..levels.len() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            got.extend(target.take(1).await);
        }
        got
    });
    published.unwrap();
    let level = |m: &String| m.split(':').nth(1).unwrap().parse::<u64>().unwrap();
    assert!(
        got.windows(2).all(|w| level(&w[0]) <= level(&w[1])),
        "{got:?}"
    );
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, ["1:1", "2:2", "3:2", "4:3"], "{got:?}");
    target.delete().await;
}

//! Consuming the listen queue (`docs/opencti-protocol.md` §4.2), with this project's rules:
//! manual acknowledgement **after** the result was pushed or the failure reported, a
//! prefetch equal to the configured concurrency, reconnection after a delay, and a
//! graceful stop that lets in-flight enrichments finish.

use crate::opencti::pipeline::handler::{Disposition, Handler};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where and how to consume.
#[derive(Clone)]
pub struct ListenTarget {
    pub uri: AMQPUri,
    pub queue: String,
    pub consumer_tag: String,
    pub concurrency: usize,
    pub reconnect_delay: Duration,
    /// How long in-flight enrichments may take to finish once a stop was asked.
    pub drain_timeout: Duration,
}

/// Consumes until `shutdown`; reconnects after `reconnect_delay` when the broker goes away.
pub async fn listen(target: ListenTarget, handler: Arc<Handler>, shutdown: CancellationToken) {
    let endpoint = crate::opencti::protocol::push::endpoint(&target.uri);
    while !shutdown.is_cancelled() {
        match consume(&target, &handler, &shutdown).await {
            Ok(()) => break,
            Err(e) => {
                tracing::error!(broker = %endpoint, error = %e, delay_s = target.reconnect_delay.as_secs(), "lost the listen queue; reconnecting");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(target.reconnect_delay) => {}
                }
            }
        }
    }
}

async fn consume(
    target: &ListenTarget,
    handler: &Arc<Handler>,
    shutdown: &CancellationToken,
) -> Result<(), lapin::Error> {
    let conn = Connection::connect_uri(
        target.uri.clone(),
        ConnectionProperties::default()
            .with_connection_name(format!("{} listen", target.consumer_tag).into()),
    )
    .await?;
    let channel = conn.create_channel().await?;
    let prefetch = u16::try_from(target.concurrency).unwrap_or(u16::MAX);
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            target.queue.as_str().into(),
            target.consumer_tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %target.queue, prefetch, "consuming");
    let mut in_flight = JoinSet::new();
    let outcome = loop {
        // Keep at most `concurrency` enrichments running (a stop ends the wait).
        while in_flight.len() >= target.concurrency && !shutdown.is_cancelled() {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {}
                _ = in_flight.join_next() => {}
            }
        }
        // Biased: once a stop was asked, no delivery is taken any more, even one that is
        // ready at the same time (it stays unacknowledged and the broker redelivers it).
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = channel.basic_cancel(target.consumer_tag.as_str().into(), BasicCancelOptions::default()).await;
                break Ok(());
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            delivery = consumer.next() => match delivery {
                None => break Err(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed))),
                Some(Err(e)) => break Err(e),
                Some(Ok(delivery)) => {
                    let handler = handler.clone();
                    in_flight.spawn(async move {
                        let disposition = handler.handle(&delivery.data, delivery.redelivered).await;
                        let acked = match disposition {
                            Disposition::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
                            Disposition::Requeue => delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await,
                        };
                        if let Err(e) = acked {
                            tracing::error!(error = %e, "cannot acknowledge a message; the broker will redeliver it");
                        }
                    });
                }
            }
        }
    };
    // Let in-flight enrichments finish (and acknowledge) before closing.
    let drained = tokio::time::timeout(target.drain_timeout, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = in_flight.len(),
            "stopping with enrichments still running; their messages will be redelivered"
        );
        in_flight.abort_all();
    }
    let _ = channel.close(200, "bye".into()).await;
    let _ = conn.close(200, "bye".into()).await;
    outcome
}

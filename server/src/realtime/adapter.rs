//! The Socket.IO Redis adapter's pub/sub driver, on a [`ConnectionManager`] that
//! reconnects and resubscribes by itself.
//!
//! socketioxide-redis' own driver holds one `MultiplexedConnection`: once Redis
//! restarts, that connection is dead for good and every cross-replica broadcast
//! fails until the process restarts. This driver is the same protocol (RESP3 push
//! messages routed to one channel per subscription, see socketioxide-redis'
//! `drivers/redis.rs`) over a manager configured with automatic resubscription, so
//! the adapter recovers when Redis comes back.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

#[derive(Clone)]
pub struct ReconnectingDriver {
    handlers: Handlers,
    conn: ConnectionManager,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DriverError(#[from] redis::RedisError);

fn route(msg: PushInfo, handlers: &Handlers) {
    if !matches!(msg.kind, PushKind::Message | PushKind::SMessage) || msg.data.len() < 2 {
        return;
    }
    let mut data = msg.data.into_iter();
    let (Some(chan), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(chan), Ok(payload)) = (
        String::from_redis_value(chan),
        Vec::<u8>::from_redis_value(payload),
    ) else {
        tracing::warn!("malformed Socket.IO adapter message");
        return;
    };
    let Ok(handlers) = handlers.read() else {
        return;
    };
    if let Some(tx) = handlers.get(&chan)
        && let Err(e) = tx.try_send((chan, payload))
    {
        tracing::warn!(error = %e, "Socket.IO adapter channel full");
    }
}

impl ReconnectingDriver {
    /// `client` must speak RESP3 (push messages).
    pub async fn new(client: redis::Client) -> redis::RedisResult<Self> {
        let handlers: Handlers = Arc::default();
        let routed = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_automatic_resubscription()
            .set_push_sender(move |msg: PushInfo| {
                route(msg, &routed);
                Ok::<(), std::convert::Infallible>(())
            });
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(ReconnectingDriver { handlers, conn })
    }
}

impl Driver for ReconnectingDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn
            .clone()
            .publish::<_, _, redis::Value>(chan, val)
            .await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        // Registered first: a message arriving right after SUBSCRIBE has a handler.
        let (tx, rx) = mpsc::channel(size);
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.insert(chan.clone(), tx);
        }
        self.conn.clone().subscribe(chan.as_str()).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.remove(&chan);
        }
        self.conn.clone().unsubscribe(chan).await?;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let mut conn = self.conn.clone();
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }
}

/// The adapter's pub/sub: across replicas through Redis, or none.
#[derive(Clone)]
pub enum PubSub {
    Redis(ReconnectingDriver),
    Local,
}

impl Driver for PubSub {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        match self {
            PubSub::Redis(d) => d.publish(chan, val).await,
            PubSub::Local => Ok(()),
        }
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        match self {
            PubSub::Redis(d) => d.subscribe(chan, size).await,
            PubSub::Local => Ok(MessageStream::new_empty()),
        }
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        match self {
            PubSub::Redis(d) => d.unsubscribe(chan).await,
            PubSub::Local => Ok(()),
        }
    }

    /// Alone, this process is the only server: requests that await the other servers'
    /// answers (fetching sockets, broadcasts with acks) expect none.
    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        match self {
            PubSub::Redis(d) => d.num_serv(chan).await,
            PubSub::Local => Ok(1),
        }
    }
}

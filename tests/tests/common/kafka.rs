//! Reading a topic back with a stock Kafka client (rskafka's fetch): what an audit sink wrote,
//! as the broker holds it.

use std::time::{Duration, Instant};

use rskafka::client::ClientBuilder;
use rskafka::client::partition::UnknownTopicHandling;
use rskafka::record::RecordAndOffset;

type BoxError = Box<dyn std::error::Error>;

/// How long a test waits for records to show up (a bound, not a speed expectation).
pub const WAIT: Duration = Duration::from_secs(30);

/// Everything a record carries (key, value, header names and values) as text, for canary
/// checks.
pub fn record_text(record: &rskafka::record::Record) -> String {
    let mut bytes = record.key.clone().unwrap_or_default();
    bytes.extend(record.value.as_deref().unwrap_or_default());
    for (name, value) in &record.headers {
        bytes.extend(name.as_bytes());
        bytes.extend(value);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One record read back, with the partition that held it.
pub struct Consumed {
    pub partition: i32,
    pub record: RecordAndOffset,
}

/// Reads every partition of `topic` at `bootstrap` from the start until `expect` records
/// arrived or [`WAIT`] passed; returns what arrived.
pub fn consume(bootstrap: &str, topic: &str, expect: usize) -> Result<Vec<Consumed>, BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let deadline = Instant::now() + WAIT;
        let client = ClientBuilder::new(vec![bootstrap.to_owned()])
            .build()
            .await?;
        let partitions = loop {
            let topics = client.list_topics().await?;
            if let Some(found) = topics.into_iter().find(|t| t.name == topic) {
                break found.partitions;
            }
            if Instant::now() > deadline {
                return Err(format!("topic {topic} never appeared").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut clients = Vec::new();
        for partition in &partitions {
            clients.push((
                *partition,
                client
                    .partition_client(topic.to_owned(), *partition, UnknownTopicHandling::Retry)
                    .await?,
                0i64,
            ));
        }
        let mut out = Vec::new();
        while out.len() < expect && Instant::now() < deadline {
            for (partition, client, offset) in &mut clients {
                let (records, _high_watermark) =
                    client.fetch_records(*offset, 1..4_000_000, 100).await?;
                for record in records {
                    *offset = record.offset + 1;
                    out.push(Consumed {
                        partition: *partition,
                        record,
                    });
                }
            }
        }
        Ok::<_, BoxError>(out)
    })
}

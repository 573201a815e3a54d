//! Delivery outcomes back to `accessd` over gRPC (`Operator.RecordEmailDelivery`),
//! for a `mailerd` that runs apart from the service: through whichever of the
//! service's replicas answers, so one replica down stalls no worker.

use crate::delivery::{DeliveryReport, DeliveryReporter};
use access_proto::v1 as pb;
use access_proto::v1::operator_client::OperatorClient;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Reports through the service's API with the operator key, to whichever
/// of the service's replicas answers.
#[derive(Clone)]
pub struct GrpcReporter {
    channels: Vec<Channel>,
    /// The replica that answered last: asked first next time.
    preferred: Arc<AtomicUsize>,
    bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl std::fmt::Debug for GrpcReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcReporter")
    }
}

impl GrpcReporter {
    /// A reporter to the service at `urls` (`http://a:50051,http://b:50051`),
    /// connecting lazily so that the service may start after the mailer.
    pub fn new(urls: &str, operator_key: &str) -> anyhow::Result<Self> {
        let channels = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|url| {
                Ok(Channel::from_shared(url.to_owned())
                    .map_err(|e| anyhow::anyhow!("the service URL {url:?}: {e}"))?
                    .connect_timeout(Duration::from_secs(2))
                    .timeout(Duration::from_secs(10))
                    .connect_lazy())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!channels.is_empty(), "no service URL to report to");
        let bearer = format!("Bearer {}", operator_key.trim())
            .parse()
            .map_err(|_| anyhow::anyhow!("the operator key is not a valid header value"))?;
        Ok(GrpcReporter {
            channels,
            preferred: Arc::new(AtomicUsize::new(0)),
            bearer,
        })
    }

    async fn report_to(&self, channel: Channel, report: &DeliveryReport) -> Result<(), Status> {
        let mut request = tonic::Request::new(pb::RecordEmailDeliveryRequest {
            tenant_id: report.tenant.clone(),
            contact_id: report.contact_id.clone(),
            source_event_id: report.source_event_id.clone(),
            kind: report.kind.clone(),
            failure: report.failure.clone().unwrap_or_default(),
        });
        request
            .metadata_mut()
            .insert("authorization", self.bearer.clone());
        OperatorClient::new(channel)
            .record_email_delivery(request)
            .await
            .map(|_| ())
    }
}

/// Whether another replica might record what this one could not: it was out
/// of reach, not serving, or cut off; a refusal of the report itself would be
/// the same everywhere.
fn try_another(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
    )
}

impl DeliveryReporter for GrpcReporter {
    fn report(&self, report: DeliveryReport) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let first = self.preferred.load(Ordering::Relaxed);
            let mut last = None;
            for i in 0..self.channels.len() {
                let at = (first + i) % self.channels.len();
                match self.report_to(self.channels[at].clone(), &report).await {
                    Ok(()) => {
                        self.preferred.store(at, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(status) if try_another(&status) => last = Some(status),
                    Err(status) => {
                        return Err(anyhow::anyhow!(
                            "recording a delivery: {}",
                            status.message()
                        ));
                    }
                }
            }
            Err(anyhow::anyhow!(
                "recording a delivery: no replica of the service answered: {}",
                last.map(|s| s.message().to_owned()).unwrap_or_default()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_url_is_a_replica_and_none_is_refused() {
        let r = GrpcReporter::new("http://a:1, http://b:2,", "key").unwrap();
        assert_eq!(r.channels.len(), 2);
        assert!(GrpcReporter::new(" , ", "key").is_err());
        assert!(GrpcReporter::new("not a url", "key").is_err());
    }
}

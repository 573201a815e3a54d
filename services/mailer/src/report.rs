//! Delivery outcomes back to `accessd` over gRPC (`Operator.RecordEmailDelivery`),
//! for a `mailerd` that runs apart from the service.

use crate::worker::{DeliveryReport, DeliveryReporter};
use access_proto::v1 as pb;
use access_proto::v1::operator_client::OperatorClient;
use futures::future::BoxFuture;
use tonic::transport::Channel;

/// Reports through the service's API with the operator key.
#[derive(Clone)]
pub struct GrpcReporter {
    channel: Channel,
    bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl std::fmt::Debug for GrpcReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcReporter")
    }
}

impl GrpcReporter {
    /// A reporter to the service at `url` (`http://host:50051`), connecting
    /// lazily so that the service may start after the mailer.
    pub fn new(url: &str, operator_key: &str) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(url.to_owned())
            .map_err(|e| anyhow::anyhow!("the service URL {url:?}: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(10))
            .connect_lazy();
        let bearer = format!("Bearer {}", operator_key.trim())
            .parse()
            .map_err(|_| anyhow::anyhow!("the operator key is not a valid header value"))?;
        Ok(GrpcReporter { channel, bearer })
    }
}

impl DeliveryReporter for GrpcReporter {
    fn report(&self, report: DeliveryReport) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let mut request = tonic::Request::new(pb::RecordEmailDeliveryRequest {
                tenant_id: report.tenant,
                contact_id: report.contact_id,
                source_event_id: report.source_event_id,
                kind: report.kind,
                failure: report.failure.unwrap_or_default(),
            });
            request
                .metadata_mut()
                .insert("authorization", self.bearer.clone());
            OperatorClient::new(self.channel.clone())
                .record_email_delivery(request)
                .await
                .map_err(|s| anyhow::anyhow!("recording a delivery: {}", s.message()))?;
            Ok(())
        })
    }
}

//! The baseline server of the gRPC rows: the service's messages, handlers that
//! answer at once with a reply of the same size, the same tonic server and
//! runtime settings as `accessd`, in a process of its own.

use access_proto::v1 as pb;
use tonic::{Request, Response, Status};

/// Generated code of `bench.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("bench.v1");
}

use v1::empty_server::{Empty, EmptyServer};

struct Handlers;

#[tonic::async_trait]
impl Empty for Handlers {
    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessReply>, Status> {
        let r = request.into_inner();
        Ok(Response::new(pb::CheckAccessReply {
            allowed: true,
            reason: "allowed".into(),
            message: String::new(),
            contact_id: r.contact_id,
            customer_id: "C000001".into(),
            order_site: "Leeds".into(),
            amr: Vec::new(),
            acr: String::new(),
        }))
    }

    async fn invite_customer(
        &self,
        request: Request<pb::InviteCustomerRequest>,
    ) -> Result<Response<pb::InviteCustomerReply>, Status> {
        let _ = request.into_inner();
        Ok(Response::new(pb::InviteCustomerReply {
            position: 123_456,
            contact_id: "019a6b2c3d4e5f60718293a4b5c6d7e8".into(),
            invitation_id: "019a6b2c3d4e5f60718293a4b5c6d7e9".into(),
            expires_at: "2026-11-24T15:00:00Z".into(),
        }))
    }
}

/// A token answer of the size the provider gives (two JWTs and a refresh token).
const TOKEN_ANSWER: &str = include_str!("empty_token.json");
/// An introspection answer of the size the provider gives.
const INTROSPECTION_ANSWER: &str = include_str!("empty_introspection.json");

/// The HTTP baseline: the same axum and hyper as `accessd`'s HTTP side,
/// reading the form and answering with a body of the provider's size.
fn http_router() -> axum::Router {
    use axum::routing::post;
    let answer = |body: &'static str| {
        move |_form: axum::body::Bytes| async move {
            (
                [
                    (axum::http::header::CONTENT_TYPE, "application/json"),
                    (axum::http::header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
        }
    };
    axum::Router::new()
        .route("/token", post(answer(TOKEN_ANSWER)))
        .route("/introspect", post(answer(INTROSPECTION_ANSWER)))
}

/// Serves the empty handlers on `addr` (gRPC) and on a port beside it
/// (HTTP) until killed; prints the bound addresses.
pub async fn serve(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let http = tokio::net::TcpListener::bind((addr.ip(), 0)).await?;
    println!("empty: http {}", http.local_addr()?);
    println!("empty: listening {}", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(access_service::startup::http_incoming(http), http_router()).await
    });
    access_service::startup::grpc_server_limits(tonic::transport::Server::builder())
        .add_service(EmptyServer::new(Handlers))
        .serve_with_incoming(access_service::startup::grpc_incoming(listener))
        .await?;
    Ok(())
}

/// A client of the empty server.
pub type Client = v1::empty_client::EmptyClient<tonic::transport::Channel>;

//! TLS when a certificate is configured: gRPC and HTTP both speak it, plain
//! text is refused; with a client CA, gRPC callers without a certificate
//! signed by it are refused (mutual TLS).

use access_proto::v1 as pb;
use access_proto::v1::operator_client::OperatorClient;
use access_tests::TestApp;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::Path;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca = params.self_signed(&key).expect("CA");
        Pki {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` and its key, both PEM.
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

async fn status(channel: Channel, operator_key: &str) -> Result<u64, tonic::Status> {
    let mut request = tonic::Request::new(pb::GetLogStatusRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {operator_key}").parse().expect("header"),
    );
    OperatorClient::new(channel)
        .get_log_status(request)
        .await
        .map(|r| r.into_inner().head_position)
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().expect("port")
}

async fn channel(
    addr: &str,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    match tls {
        Some(tls) => {
            Channel::from_shared(format!("https://localhost:{}", port(addr)))
                .expect("url")
                .tls_config(tls)?
                .connect()
                .await
        }
        None => {
            Channel::from_shared(format!("http://{addr}"))
                .expect("url")
                .connect()
                .await
        }
    }
}

#[tokio::test]
async fn with_a_certificate_both_servers_speak_tls_and_plain_text_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::new("test CA");
    let (cert, key) = pki.leaf(&["localhost", "127.0.0.1"]);
    let cert = write(dir.path(), "server.pem", &cert);
    let key = write(dir.path(), "server.key", &key);
    let app = TestApp::spawn_with(&["--tls-cert-file", &cert, "--tls-key-file", &key]).await;

    let trusted = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let secure = channel(&app.grpc_addr, Some(trusted))
        .await
        .expect("TLS connects");
    status(secure, &app.operator_key)
        .await
        .expect("a call over TLS");

    let plain = match channel(&app.grpc_addr, None).await {
        Err(_) => None,
        Ok(c) => Some(status(c, &app.operator_key).await),
    };
    assert!(
        !matches!(plain, Some(Ok(_))),
        "plain text must not get an answer: {plain:?}"
    );

    // A certificate from a CA the client does not trust is refused.
    let stranger = Pki::new("another CA");
    let untrusting = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&stranger.ca_pem))
        .domain_name("localhost");
    assert!(channel(&app.grpc_addr, Some(untrusting)).await.is_err());

    // The HTTP side speaks TLS with the same certificate.
    let out = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import ssl,sys,urllib.request;ctx=ssl.create_default_context(cafile=sys.argv[1]);print(urllib.request.urlopen('https://localhost:'+sys.argv[2]+'/healthz',context=ctx).read().decode())",
        ])
        .arg(write(dir.path(), "ca.pem", &pki.ca_pem))
        .arg(port(&app.http_addr))
        .output()
        .await
        .expect("python3 runs");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn with_a_client_ca_callers_need_a_certificate_it_signed() {
    let dir = tempfile::tempdir().expect("dir");
    let servers = Pki::new("server CA");
    let clients = Pki::new("client CA");
    let (cert, key) = servers.leaf(&["localhost"]);
    let app = TestApp::spawn_with(&[
        "--tls-cert-file",
        &write(dir.path(), "server.pem", &cert),
        "--tls-key-file",
        &write(dir.path(), "server.key", &key),
        "--tls-client-ca-file",
        &write(dir.path(), "clients.pem", &clients.ca_pem),
    ])
    .await;
    let base = || {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&servers.ca_pem))
            .domain_name("localhost")
    };

    let anonymous = match channel(&app.grpc_addr, Some(base())).await {
        Err(_) => None,
        Ok(c) => Some(status(c, &app.operator_key).await),
    };
    assert!(!matches!(anonymous, Some(Ok(_))), "{anonymous:?}");

    let (wrong_cert, wrong_key) = servers.leaf(&["billing-service"]);
    let wrong = base().identity(Identity::from_pem(wrong_cert, wrong_key));
    let wrong = match channel(&app.grpc_addr, Some(wrong)).await {
        Err(_) => None,
        Ok(c) => Some(status(c, &app.operator_key).await),
    };
    assert!(!matches!(wrong, Some(Ok(_))), "{wrong:?}");

    let (client_cert, client_key) = clients.leaf(&["billing-service"]);
    let known = base().identity(Identity::from_pem(client_cert, client_key));
    let c = channel(&app.grpc_addr, Some(known))
        .await
        .expect("mutual TLS connects");
    status(c, &app.operator_key)
        .await
        .expect("a call with a client certificate");
}

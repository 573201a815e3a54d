//! Black-box tests: the real `accessd`, a real gRPC client, real files.

mod approval;
mod audit;
mod bad_input;
mod bulk;
mod concurrency;
mod crash;
mod customers;
mod distributed;
mod erasure;
mod faults;
mod idempotency;
mod inzant;
mod isolation;
mod key_rotation;
mod lockout;
mod logins;
mod mailerd;
mod nats_log;
mod passwords;
mod portal_links;
mod rebuild;
mod resets;
mod smtp;
mod staff;
mod tls;
mod walkthrough;

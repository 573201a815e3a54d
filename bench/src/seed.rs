//! Data for the rows, through the service's own API: customers `C0000000`…
//! and their invited contacts `p<i>@…`, ten per customer, from concurrent
//! callers.

use access_proto::v1 as pb;
use access_tests::{TestApp, customer, invite_request, new_id};
use std::future::Future;
use std::time::{Duration, Instant};

/// Runs `op(i)` for every `i` below `count`, from `callers` concurrent
/// callers, each taking a contiguous share in order; returns the results in
/// order of `i`.
pub async fn spread<F, Fut, T>(count: usize, callers: usize, op: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let share = count.div_ceil(callers.max(1)).max(1);
    let indexes: Vec<usize> = (0..count).collect();
    let op = &op;
    let shares = futures::future::try_join_all(indexes.chunks(share).map(|chunk| async move {
        let mut out = Vec::with_capacity(chunk.len());
        for &i in chunk {
            out.push(op(i).await?);
        }
        Ok::<_, anyhow::Error>(out)
    }))
    .await?;
    Ok(shares.into_iter().flatten().collect())
}

/// The id of customer `c`.
pub fn customer_id(c: usize) -> String {
    format!("C{c:07}")
}

/// Creates customer `c` with `key`.
pub async fn create_customer(app: &TestApp, key: &str, c: usize) -> anyhow::Result<()> {
    app.access()
        .create_customer(app.req(
            key,
            pb::CreateCustomerRequest {
                request_id: new_id(),
                customer: Some(customer(&customer_id(c), None)),
            },
        ))
        .await?;
    Ok(())
}

/// Invites contact `i` (of customer `i / 10`) at `email` with `key`;
/// returns its contact id.
pub async fn invite(app: &TestApp, key: &str, i: usize, email: &str) -> anyhow::Result<String> {
    Ok(app
        .access()
        .invite_customer(app.req(key, invite_request(&customer_id(i / 10), email, None)))
        .await?
        .into_inner()
        .contact_id)
}

/// Polls `reached` every `every` until it is true; an error naming `what`
/// after `limit`.
pub async fn wait_until(
    limit: Duration,
    every: Duration,
    what: &str,
    reached: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !reached() {
        anyhow::ensure!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(every).await;
    }
    Ok(())
}

//! Redis stopped, restarted and paused under two running clients: fail closed, then recover
//! without rebuilding anything.

use std::time::Duration;

use crate::common::TestResult;
use crate::common::redis::{assert_no_canary, suite_redis};
use crate::{Replica, Stack, VALUE, caller, jti};

/// Each Redis call of these clients is bounded by this.
const TIMEOUT_MS: u64 = 500;
/// How long a client may take to find Redis again (reconnect back-off included).
const RECOVERY: Duration = Duration::from_secs(30);
/// The guard on a call to a paused Redis: it must end (at `TIMEOUT_MS`) long before this.
const GUARD: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_and_the_clients_recover() -> TestResult {
    let Some(redis) = suite_redis() else {
        return Ok(());
    };
    let Some(stack) = Stack::start()? else {
        return Ok(());
    };
    // Alone on the server: it is stopped, restarted (empty) and paused below.
    let mut server = redis.write().await;
    let prefix = "outage-suite:";
    let a = Replica::new(&stack, &server, prefix, TIMEOUT_MS)?;
    let b = Replica::new(&stack, &server, prefix, TIMEOUT_MS)?;

    assert_eq!(a.get(&jti()).await?.expose_str(), Some(VALUE));
    assert_eq!(b.get(&jti()).await?.expose_str(), Some(VALUE));
    assert_eq!((stack.decisions(), stack.reads()), (1, 2));
    let canaries = stack.canaries();
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    // Scanned now: the restart below empties the server.
    assert!(assert_no_canary(&server, &canaries) >= 3);

    // Stopped mid-run: every call fails closed, transient, and nothing goes through.
    server.stop();
    for replica in [&a, &b] {
        for _ in 0..3 {
            let error = replica.get(&jti()).await.unwrap_err();
            assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE", "{error}");
            assert!(error.is_transient());
            assert_eq!(error.deny_reason(), None);
        }
    }
    let client = a.client.clone();
    let ctx = caller(&jti());
    let blocking = tokio::task::spawn_blocking(move || {
        client.get_credentials_blocking(crate::uri().as_str(), Some(&ctx))
    })
    .await?;
    assert_eq!(
        blocking.err().map(|e| e.code()),
        Some("STATE_STORE_UNAVAILABLE")
    );
    assert_eq!(
        (stack.decisions(), stack.reads()),
        (1, 2),
        "no decision and no read while Redis is down"
    );

    // Restarted (empty, same port): the same clients recover. The state went with the old
    // server, so the first read back is a fresh decision, which the other replica then uses.
    server.restart()?;
    let failed = a.recover(RECOVERY).await? + b.recover(RECOVERY).await?;
    eprintln!("{failed} calls failed closed while the clients reconnected");
    assert_eq!((stack.decisions(), stack.reads()), (2, 4));

    // Paused: the connection is open but nothing answers. The call fails closed within
    // REDIS_TIMEOUT_MS (guarded here, not timed), and reads nothing.
    server.pause()?;
    let hung = tokio::time::timeout(GUARD, a.get(&jti()))
        .await
        .expect("a call to a Redis that never answers ends at REDIS_TIMEOUT_MS");
    let error = hung.unwrap_err();
    assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE", "{error}");
    let hung = tokio::time::timeout(GUARD, b.get(&jti()))
        .await
        .expect("a call to a Redis that never answers ends at REDIS_TIMEOUT_MS");
    assert_eq!(
        hung.err().map(|e| e.code()),
        Some("STATE_STORE_UNAVAILABLE")
    );
    assert_eq!(stack.reads(), 4, "no read while Redis hangs");
    server.resume()?;
    a.recover(RECOVERY).await?;
    b.recover(RECOVERY).await?;
    assert_eq!(stack.reads(), 6);
    assert!(
        stack.reads() <= crate::MAX_USES * stack.decisions(),
        "no decision served more than its uses"
    );
    assert!(assert_no_canary(&server, &canaries) >= 3);
    Ok(())
}

//! The vault against a real PostgreSQL: sealed rows open only under their key and their own
//! owner and kind, and a rotation seals every row under the new key.

use hooklog_write::vault::{SecretKind, Vault, VaultError, VaultKeys};
use secrecy::{ExposeSecret, SecretString};

use crate::support::key;

/// A vault over `pool` sealing under key `current`, opening under `previous` too.
fn vault(pool: &sqlx::PgPool, current: u8, previous: Option<u8>) -> Vault {
    Vault::new(
        pool.clone(),
        VaultKeys {
            current: key(current),
            previous: previous.map(key),
        },
    )
}

#[tokio::test]
async fn rotation_reseals_under_the_new_key_and_the_old_key_alone_no_longer_opens() {
    let backends = hooklog_infra::testing::Backends::start("hooklog-vault-test").await;
    let pool = backends.pool.clone();
    let old = vault(&pool, 1, None);
    old.put(
        "c1",
        SecretKind::Token,
        &SecretString::from("token-one".to_owned()),
    )
    .await
    .unwrap();
    old.put(
        "c1",
        SecretKind::WebhookSecret,
        &SecretString::from("secret-one".to_owned()),
    )
    .await
    .unwrap();

    let new_only = vault(&pool, 2, None);
    match new_only.get("c1", SecretKind::Token).await {
        Err(VaultError::UnknownKey { key_id, .. }) => assert_eq!(key_id, key(1).id()),
        other => panic!("expected an unknown key, got {other:?}"),
    }
    let rotating = vault(&pool, 2, Some(1));
    assert_eq!(
        rotating
            .get("c1", SecretKind::Token)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "token-one"
    );
    let rotated = rotating.rotate().await.unwrap();
    assert_eq!((rotated.resealed, rotated.current), (2, 0));
    assert_eq!(
        rotating.rotate().await.unwrap().resealed,
        0,
        "a second run has nothing to do"
    );
    assert_eq!(
        new_only
            .get("c1", SecretKind::WebhookSecret)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "secret-one"
    );
    assert!(matches!(
        old.get("c1", SecretKind::Token).await,
        Err(VaultError::UnknownKey { .. })
    ));
    let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT key_id FROM vault_secrets")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids, [key(2).id().to_owned()]);
}

#[tokio::test]
async fn a_row_moved_to_another_owner_or_kind_or_altered_does_not_open() {
    let backends = hooklog_infra::testing::Backends::start("hooklog-vault-test").await;
    let pool = backends.pool.clone();
    let vault = vault(&pool, 3, None);
    vault
        .put(
            "c1",
            SecretKind::Token,
            &SecretString::from("token-one".to_owned()),
        )
        .await
        .unwrap();
    sqlx::query("UPDATE vault_secrets SET owner = 'c2'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        vault.get("c2", SecretKind::Token).await,
        Err(VaultError::Corrupt { .. })
    ));
    sqlx::query("UPDATE vault_secrets SET owner = 'c1', kind = 'webhook_secret'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        vault.get("c1", SecretKind::WebhookSecret).await,
        Err(VaultError::Corrupt { .. })
    ));
    sqlx::query("UPDATE vault_secrets SET kind = 'token', ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)")
        .execute(&pool)
        .await
        .unwrap();
    let err = vault.get("c1", SecretKind::Token).await.unwrap_err();
    assert!(err.to_string().contains("altered or moved"), "{err}");
    assert!(!err.to_string().contains("token-one"));
    assert_eq!(
        vault
            .get("nobody", SecretKind::Token)
            .await
            .unwrap()
            .map(|_| ()),
        None
    );
}

#[tokio::test]
async fn a_secret_that_does_not_open_leaves_out_its_connection_alone() {
    let backends = hooklog_infra::testing::Backends::start("hooklog-vault-test").await;
    let pool = backends.pool.clone();
    let vault = vault(&pool, 4, None);
    for owner in ["a", "b"] {
        vault
            .put(
                owner,
                SecretKind::WebhookSecret,
                &SecretString::from(format!("secret-{owner}")),
            )
            .await
            .unwrap();
    }
    sqlx::query("UPDATE vault_secrets SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE owner = 'a'")
        .execute(&pool)
        .await
        .unwrap();
    let all = vault.all(SecretKind::WebhookSecret).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(matches!(all[0], (ref o, Err(VaultError::Corrupt { .. })) if o == "a"));
    assert!(matches!(all[1], (ref o, Ok(ref s)) if o == "b" && s.expose_secret() == "secret-b"));
}

#[tokio::test]
async fn a_kind_of_secret_this_hooklog_does_not_know_stops_a_rotation_naming_it() {
    let backends = hooklog_infra::testing::Backends::start("hooklog-vault-test").await;
    let pool = backends.pool.clone();
    let old = vault(&pool, 1, None);
    old.put(
        "c1",
        SecretKind::Token,
        &SecretString::from("token-one".to_owned()),
    )
    .await
    .unwrap();
    // A row a newer hooklog wrote, of a kind this one has no name for.
    sqlx::query(
        "INSERT INTO vault_secrets (owner, kind, key_id, nonce, ciphertext) \
         SELECT owner, 'signing_key', key_id, nonce, ciphertext FROM vault_secrets",
    )
    .execute(&pool)
    .await
    .unwrap();
    let rotating = vault(&pool, 2, Some(1));
    match rotating.rotate().await {
        Err(err @ VaultError::UnknownKind { .. }) => {
            assert!(err.to_string().contains("\"signing_key\" of c1"), "{err}")
        }
        other => panic!("expected an unknown kind, got {other:?}"),
    }
    assert_eq!(SecretKind::parse("token"), Some(SecretKind::Token));
    assert_eq!(
        SecretKind::parse("webhook_secret"),
        Some(SecretKind::WebhookSecret)
    );
}

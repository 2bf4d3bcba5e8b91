//! Sources: what a source may be, which prefixes cover it (on segment and host boundaries), and
//! errors that never echo a secret.

use super::*;

fn allowed(setting: &str) -> AllowedSources {
    AllowedSources::parse(setting).unwrap()
}

fn source(value: &str) -> SourceLocation {
    SourceLocation::parse(value).unwrap()
}

#[test]
fn sources_are_paths_or_git_urls_and_never_options_or_transports() {
    for good in [
        "/srv/repos/plugins",
        "plugins",
        "https://git.example.com/a/b.git",
        "ssh://git@host/a/b",
        "git@host:a/b.git",
        "file:///srv/a",
        "/srv/git/.hidden/a",
        "/srv/git/.../a",
    ] {
        assert!(SourceLocation::parse(good).is_ok(), "{good:?}");
    }
    for bad in [
        "",
        " ",
        "--upload-pack=touch /tmp/x",
        "ext::sh -c touch% /tmp/x",
        "fd::17",
        "gopher://host/a",
        "/a\nb",
    ] {
        assert!(SourceLocation::parse(bad).is_err(), "{bad:?}");
    }
    assert!(!source("/srv/a").is_remote());
    assert!(!source("file:///srv/a").is_remote());
    assert!(source("https://h/a").is_remote());
    assert!(source("git@host:a/b").is_remote());
}

#[test]
fn credentials_are_refused_without_echoing_them_but_an_ssh_login_is_not_one() {
    for secret in [
        "https://bot:hunter2@git.example.com/a.git",
        "https://hunter2@github.com/a/b.git",
        "http://hunter2@git.example.com/a.git",
        "git://hunter2@git.example.com/a.git",
        "file://hunter2@/srv/a",
        "ssh://git:hunter2@host/a/b",
        "ssh://git%3Ahunter2@host/a/b",
        "https://git.example.com/a.git?access_token=hunter2",
        "https://git.example.com?hunter2",
        "bot:hunter2@host:a/b",
    ] {
        let err = SourceLocation::parse(secret).unwrap_err();
        assert_eq!(err, IdError::SourceCredentials, "{secret:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let refused = allowed("/srv").admit(secret).unwrap_err();
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
    }
    assert!(SourceLocation::parse("ssh://git@host/a/b").is_ok());
    assert!(SourceLocation::parse("git@host:a/b").is_ok());
}

#[test]
fn dot_segments_are_refused_outright_written_or_encoded() {
    for dots in [
        "./plugins",
        "../plugins",
        "/srv/git/../etc",
        "/srv/git/./a",
        "/srv/git/..",
        "file:///srv/git/../etc",
        "file:///srv/git/%2e%2e/etc",
        "https://git.example.com/org/%2E./other",
        "https://git.example.com/org/a%2Fb",
        "https://git.example.com/org/..%5cother",
        "https://git.example.com/org\\..\\other",
        "ssh://git@host/srv/git/../etc",
        "git@host:../other",
        "git@host:..",
        "git@host:/srv/./git",
    ] {
        let err = SourceLocation::parse(dots).unwrap_err();
        assert_eq!(err, IdError::SourceDotSegment(dots.to_owned()), "{dots:?}");
    }
}

#[test]
fn a_path_prefix_covers_itself_and_what_is_under_it_on_segment_boundaries() {
    for setting in ["/srv/git", "/srv/git/", "file:///srv/git", "/srv//git"] {
        let prefixes = allowed(setting);
        for inside in [
            "/srv/git",
            "/srv/git/",
            "/srv/git/a",
            "/srv/git/a/b.git",
            "/srv/git//a",
            "file:///srv/git/a",
        ] {
            assert_eq!(
                prefixes.check(&source(inside)),
                Ok(()),
                "{setting} {inside}"
            );
        }
        for outside in [
            "/srv/gitevil",
            "/srv/gitevil/a",
            "/srv/gi",
            "/srv",
            "/",
            "/other/srv/git",
            "srv/git/a",
            "file://localhost/srv/git/a",
            "ssh://host/srv/git/a",
            "host:/srv/git/a",
        ] {
            let refused = prefixes.check(&source(outside)).unwrap_err();
            assert_eq!(
                refused,
                SourceRefused::NotAllowed(outside.to_owned()),
                "{setting} {outside}"
            );
            assert!(refused.to_string().contains(ALLOWED_SOURCES_SETTING));
        }
        for escape in [
            "/srv/git/../etc",
            "/srv/git/a/../../etc",
            "file:///srv/git/%2e%2e",
        ] {
            assert!(
                matches!(
                    prefixes.admit(escape),
                    Err(SourceRefused::Invalid(IdError::SourceDotSegment(_)))
                ),
                "{setting} {escape}"
            );
        }
    }
}

#[test]
fn a_url_prefix_covers_its_scheme_host_and_path_segments_only() {
    let prefixes = allowed("https://git.example.com/org/");
    for inside in [
        "https://git.example.com/org/a.git",
        "https://git.example.com/org/team/a.git",
        "https://GIT.Example.com/org/a.git",
        "https://git.example.com/org",
    ] {
        assert_eq!(prefixes.check(&source(inside)), Ok(()), "{inside}");
    }
    for outside in [
        "https://git.example.com/orgevil/a.git",
        "https://git.example.com/other/a.git",
        "https://git.example.com/",
        "http://git.example.com/org/a.git",
        "ssh://git.example.com/org/a.git",
        "https://git.example.com:8443/org/a.git",
        "https://git.example.com.evil.org/org/a.git",
        "https://evil.org/git.example.com/org/a.git",
        "git.example.com:org/a.git",
        "/org/a.git",
    ] {
        assert_eq!(
            prefixes.check(&source(outside)),
            Err(SourceRefused::NotAllowed(outside.to_owned())),
            "{outside}"
        );
    }

    let host = allowed("https://git.example.com");
    assert_eq!(
        host.check(&source("https://git.example.com/a/b.git")),
        Ok(())
    );
    for outside in [
        "https://git.example.com.evil.org/a/b.git",
        "https://git.example.comevil.org/a/b.git",
        "https://evil.org/a/b.git",
    ] {
        assert!(host.check(&source(outside)).is_err(), "{outside}");
    }
    // Userinfo would hide the real host: it is refused as credentials, whatever it says.
    assert_eq!(
        host.admit("https://git.example.com@evil.org/a/b.git"),
        Err(SourceRefused::Invalid(IdError::SourceCredentials))
    );
}

#[test]
fn ssh_and_scp_prefixes_cover_their_own_form_and_login() {
    let login = allowed("ssh://git@host/srv/");
    assert_eq!(login.check(&source("ssh://git@host/srv/a.git")), Ok(()));
    for outside in [
        "ssh://root@host/srv/a.git",
        "ssh://host/srv/a.git",
        "git@host:srv/a.git",
        "git@host:/srv/a.git",
    ] {
        assert!(login.check(&source(outside)).is_err(), "{outside}");
    }

    let any_login = allowed("ssh://host/srv");
    assert_eq!(any_login.check(&source("ssh://git@host/srv/a")), Ok(()));
    assert_eq!(any_login.check(&source("ssh://host/srv/a")), Ok(()));

    let scp = allowed("git@github.com:org/");
    assert_eq!(scp.check(&source("git@github.com:org/a.git")), Ok(()));
    for outside in [
        "git@github.com:orgevil/a.git",
        "git@github.com:/org/a.git",
        "ssh://git@github.com/org/a.git",
        "other@github.com:org/a.git",
    ] {
        assert!(scp.check(&source(outside)).is_err(), "{outside}");
    }
}

#[test]
fn with_no_prefixes_every_source_is_refused_naming_the_setting() {
    for setting in ["", " ", ",", " , "] {
        let none = allowed(setting);
        assert!(none.is_empty());
        let refused = none.admit("/srv/git/a").unwrap_err();
        assert_eq!(refused, SourceRefused::NoneAllowed);
        assert!(
            refused.to_string().contains(ALLOWED_SOURCES_SETTING),
            "{refused}"
        );
    }
    assert!(AllowedSources::default().is_empty());
}

#[test]
fn several_prefixes_are_separated_by_commas_and_any_one_covers() {
    let prefixes = allowed(" /srv/git , https://git.example.com/org/ ,git@host:team/,");
    for inside in [
        "/srv/git/a",
        "https://git.example.com/org/a",
        "git@host:team/a",
    ] {
        assert_eq!(
            prefixes.admit(inside).map(|s| s.to_string()),
            Ok(inside.to_owned())
        );
    }
    assert!(prefixes.admit("/srv/other").is_err());
}

#[test]
fn bad_prefixes_are_refused_saying_why_and_never_echo_a_secret() {
    for (setting, why) in [
        ("srv/git", "must be absolute"),
        ("/srv/git,git", "entry 2"),
        (
            "gopher://host/a",
            "not an absolute path or a file, git, http, https or ssh URL",
        ),
        ("ext::sh", "not an absolute path"),
        ("/srv/../etc", "`.` or `..`"),
        ("file://host/srv/git", "file:///<absolute path>"),
        ("https:///org/", "names no host"),
    ] {
        let err = AllowedSources::parse(setting).unwrap_err().to_string();
        assert!(err.contains(why), "{setting}: {err}");
    }
    for secret in [
        "https://bot:hunter2@git.example.com/",
        "https://hunter2@git.example.com/",
        "/srv/git,https://git.example.com/?token=hunter2",
    ] {
        let err = AllowedSources::parse(secret).unwrap_err().to_string();
        assert!(
            err.contains("credentials") && !err.contains("hunter2"),
            "{err}"
        );
    }
}

#[test]
fn stored_sources_still_decode_but_are_checked_again_by_todays_rules() {
    for stored in [
        "./plugins",
        "https://hunter2@github.com/a/b.git",
        "/srv/git/../etc",
    ] {
        let decoded: SourceLocation = serde_json::from_value(serde_json::json!(stored)).unwrap();
        assert_eq!(decoded.as_str(), stored);
        let refused = allowed("/srv/git, https://github.com/").check(&decoded);
        assert!(
            matches!(refused, Err(SourceRefused::Invalid(_))),
            "{stored}: {refused:?}"
        );
    }
    // What no hooklog ever stored still does not decode.
    let bad = serde_json::from_value::<SourceLocation>(serde_json::json!("ext::sh -c x"));
    assert!(bad.is_err());
    assert_eq!(
        serde_json::to_value(source("/srv/git/a")).unwrap(),
        serde_json::json!("/srv/git/a")
    );
}

#[test]
fn an_http_origin_is_the_scheme_and_host_of_an_http_url_without_a_user_only() {
    let origin = |value: &str| SourceLocation::from_stored(value).unwrap().http_origin();
    let gitlab = origin("https://GitLab.example.com/api/v4");
    assert_eq!(gitlab.as_deref(), Some("https://gitlab.example.com"));
    assert_eq!(origin("https://gitlab.example.com/group/p.git"), gitlab);
    for other in [
        "https://gitlab.example.com.evil.org/group/p.git",
        "https://gitlab.example.com:8443/group/p.git",
        "http://gitlab.example.com/group/p.git",
    ] {
        assert_ne!(origin(other), gitlab, "{other}");
    }
    for none in [
        "ssh://gitlab.example.com/group/p.git",
        "file:///srv/git/p.git",
        "https://user@gitlab.example.com/p.git",
        "/srv/git/p",
        "git@gitlab.example.com:group/p.git",
    ] {
        assert_eq!(origin(none), None, "{none}");
    }
}

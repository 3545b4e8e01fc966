//! The error of a configuration a service refuses. In a module of its own so that the
//! sections that validate themselves ([`crate::settings`]) and the loader ([`crate::config`],
//! which knows the shared sections' defaults) both depend on it and not on each other.

/// A configuration that cannot be used. The message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Why a listener could not be bound to the address setting `key` holds, naming the setting,
/// its value and what to do: above all for two instances on one host that want one port
/// (`aggregator.metrics_addr 0.0.0.0:9100 is in use; …`).
pub fn listen_error(key: &str, addr: std::net::SocketAddr, error: &std::io::Error) -> String {
    let variable = crate::settings::env_var(key);
    match error.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "{key} {addr} is in use (another process listens there: another instance on this \
             host?); give each instance on a host its own port ({variable}=<ip>:<port>), or port \
             0 for any free one (the address it got is logged)"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "{key} {addr} is not an address of this host ({error}); set {variable} to one of its \
             addresses, or 0.0.0.0:<port> for all"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "{key} {addr}: permission denied ({error}); ports below 1024 need privileges, set \
             {variable} to a port above 1023"
        ),
        _ => format!("{key} {addr}: cannot listen there: {error} (set {variable})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_error_names_the_setting_its_value_and_the_remedy() {
        let addr: std::net::SocketAddr = "0.0.0.0:9100".parse().expect("addr");
        let in_use = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let message = listen_error("aggregator.metrics_addr", addr, &in_use);
        assert!(
            message.starts_with("aggregator.metrics_addr 0.0.0.0:9100 is in use"),
            "{message}"
        );
        for part in [
            "give each instance on a host its own port",
            "TRENDS__AGGREGATOR__METRICS_ADDR",
        ] {
            assert!(message.contains(part), "{part} in {message}");
        }
        let elsewhere = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        let message = listen_error(
            "http.addr",
            "10.9.9.9:8080".parse().expect("addr"),
            &elsewhere,
        );
        assert!(
            message.starts_with("http.addr 10.9.9.9:8080 is not an address of this host"),
            "{message}"
        );
    }
}

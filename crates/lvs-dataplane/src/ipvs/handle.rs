//! [`IpvsHandle`]: a cloneable handle on a netlink connection task that speaks IPVS, with one
//! method per operation and [`IpvsHandle::apply_all`] for pipelined bulk programming.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use genetlink::message::{RawGenlMessage, map_from_rawgenlmsg, map_to_rawgenlmsg};
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use netlink_proto::ConnectionHandle;
use netlink_proto::sys::protocols::NETLINK_GENERIC;
use netlink_proto::sys::{AsyncSocket, SocketAddr};
use tokio::time::{Instant, timeout_at};

use super::convert::{
    daemon_from_attributes, destination_from_attributes, info_from_attributes, service_from_attributes,
    service_listing_from_replies, timeouts_from_attributes,
};
use super::error::IpvsError;
use super::family::{modprobe, resolve_family};
use super::message::{IpvsAttribute, IpvsMessage};
use super::request::IpvsRequest;
use super::types::{
    DaemonState, IpvsInfo, ObservedDestination, ObservedService, ServiceListing, SyncDaemon, Timeouts,
};
use crate::model::{Destination, Service, ServiceKey};

/// Requests per netlink datagram in [`IpvsHandle::apply_all`]. The kernel handles a datagram's
/// messages one after the other and acknowledges each, so a batch costs one `sendmsg`. (In the
/// lab, 1,000 services × 10 destinations took about the same time with batches of 16 to 256;
/// even one request at a time beat `ipvsadm -R` twice over, in a release build.)
const BATCH_SIZE: usize = 32;
/// Batches sent before the oldest is acknowledged. Unread acknowledgements must fit the socket's
/// receive buffer (each takes several hundred bytes of it): an overflow loses them, and
/// netlink-proto cannot tell whose they were. 4 × 32 stays well below the default 208 KiB.
const BATCHES_IN_FLIGHT: usize = 4;
/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER_BYTES: i32 = 1 << 20;
/// How long a request may wait for its reply.
pub(super) const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A cloneable handle on IPVS over generic netlink. Clones share one socket, one connection
/// task, one write counter and one dump at a time.
#[derive(Clone, Debug)]
pub struct IpvsHandle {
    connection: ConnectionHandle<RawGenlMessage>,
    family_id: u16,
    writes: Arc<AtomicU64>,
    /// Taken for the whole of a dump. The kernel runs one dump per netlink socket and refuses
    /// another with EBUSY while one is under way, and the agent's counter reads (metrics), its
    /// drift check and a pass all read through clones of one handle: they take turns, in order.
    dumping: Arc<tokio::sync::Mutex<()>>,
}

/// A write on its way: the message, and what it was (for errors).
struct Write {
    message: IpvsMessage,
    origin: Origin,
}

enum Origin {
    Request(IpvsRequest),
    Described(String),
}

impl Origin {
    fn context(&self) -> String {
        match self {
            Self::Request(request) => request.to_string(),
            Self::Described(context) => context.clone(),
        }
    }

    fn scheduler(&self) -> Option<&str> {
        match self {
            Self::Request(request) => request.scheduler(),
            Self::Described(_) => None,
        }
    }
}

impl From<IpvsRequest> for Write {
    fn from(request: IpvsRequest) -> Self {
        Self {
            message: request.message(),
            origin: Origin::Request(request),
        }
    }
}

impl IpvsHandle {
    /// Opens a generic netlink socket in the caller's network namespace, **spawns its
    /// connection task on the current tokio runtime** (so this must run inside one), and
    /// resolves the IPVS family. When the family is missing it runs `modprobe ip_vs` once and
    /// tries again. The task ends when the last clone of the handle is dropped.
    pub async fn new() -> Result<Self, IpvsError> {
        let (handle, family) = Self::connect().await?;
        let family_id = match family {
            Some(family_id) => family_id,
            None => {
                let modprobe = modprobe("ip_vs").await;
                tracing::info!(%modprobe, "IPVS family missing; tried modprobe ip_vs");
                resolve_family(&handle)
                    .await?
                    .ok_or(IpvsError::ModuleNotLoaded { modprobe })?
            }
        };
        Ok(Self::with_family(handle, family_id))
    }

    /// Like `new`, but `None` instead of loading the module when IPVS is not there (reading
    /// needs no module: without it there is nothing to read).
    pub async fn open_if_loaded() -> Result<Option<Self>, IpvsError> {
        let (handle, family) = Self::connect().await?;
        Ok(family.map(|family_id| Self::with_family(handle, family_id)))
    }

    async fn connect() -> Result<(ConnectionHandle<RawGenlMessage>, Option<u16>), IpvsError> {
        let (mut connection, handle, _unsolicited) =
            netlink_proto::new_connection::<RawGenlMessage>(NETLINK_GENERIC).map_err(|source| {
                IpvsError::Socket {
                    context: "opening a generic netlink socket".into(),
                    source,
                }
            })?;
        // Every write is acknowledged, and the acknowledgements tell apply_all which one failed.
        connection.set_forward_ack(true);
        let socket = connection.socket_mut().socket_mut();
        if let Err(error) = socket.set_rx_buf_sz(RECEIVE_BUFFER_BYTES) {
            tracing::debug!(%error, "cannot enlarge the netlink receive buffer");
        }
        if let Err(error) = socket.set_cap_ack(true) {
            tracing::debug!(%error, "cannot set NETLINK_CAP_ACK");
        }
        tokio::spawn(connection);
        let family = resolve_family(&handle).await?;
        Ok((handle, family))
    }

    fn with_family(connection: ConnectionHandle<RawGenlMessage>, family_id: u16) -> Self {
        Self {
            connection,
            family_id,
            writes: Arc::default(),
            dumping: Arc::default(),
        }
    }

    /// Write requests sent so far (NEW/SET/DEL of services, destinations and daemons, and
    /// SET_CONFIG), by this handle and its clones. Reads and ZERO do not count.
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Every service, with counters (`ipvsadm -Ln --stats`), and apart the entries that could
    /// not be read (see [`service_listing_from_replies`]).
    pub async fn service_listing(&self) -> Result<ServiceListing, IpvsError> {
        let replies = self
            .read(IpvsMessage::get_services(), true, "listing services")
            .await?;
        Ok(service_listing_from_replies(&replies))
    }

    /// Every service that can be read, with counters; entries that cannot are skipped
    /// ([`IpvsHandle::service_listing`] names them).
    pub async fn services(&self) -> Result<Vec<ObservedService>, IpvsError> {
        Ok(self.service_listing().await?.services)
    }

    /// One service, `None` when it does not exist.
    pub async fn service(&self, key: &ServiceKey) -> Result<Option<ObservedService>, IpvsError> {
        let context = format!("reading service {key}");
        match self.read(IpvsMessage::get_service(key), false, &context).await {
            Ok(replies) => replies
                .first()
                .map(|reply| parse_service(reply, &context))
                .transpose(),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `ipvsadm -A`. An existing service gives [`IpvsError::is_exists`]; a scheduler the
    /// kernel lacks gives [`IpvsError::SchedulerUnavailable`].
    pub async fn new_service(&self, service: &Service) -> Result<(), IpvsError> {
        self.apply(IpvsRequest::NewService(service.clone())).await
    }

    /// `ipvsadm -E`: scheduler, flags and persistence of an existing service.
    pub async fn set_service(&self, service: &Service) -> Result<(), IpvsError> {
        self.apply(IpvsRequest::SetService(service.clone())).await
    }

    /// `ipvsadm -D`, with its destinations. A missing service gives [`IpvsError::is_not_found`].
    pub async fn delete_service(&self, key: &ServiceKey) -> Result<(), IpvsError> {
        self.apply(IpvsRequest::DeleteService(*key)).await
    }

    /// The destinations of a service, with connection counts and counters. The kernel answers
    /// an empty list for a service that does not exist.
    pub async fn destinations(&self, service: &ServiceKey) -> Result<Vec<ObservedDestination>, IpvsError> {
        let context = format!("listing destinations of service {service}");
        let replies = self
            .read(IpvsMessage::get_destinations(service), true, &context)
            .await?;
        replies
            .iter()
            .map(|reply| {
                let attributes = reply.attributes.iter().find_map(|attribute| match attribute {
                    IpvsAttribute::Destination(attributes) => Some(attributes),
                    _ => None,
                });
                let attributes =
                    attributes.ok_or_else(|| malformed(&context, "a reply without IPVS_CMD_ATTR_DEST"))?;
                destination_from_attributes(attributes, service.family())
                    .map_err(|error| malformed(&context, error))
            })
            .collect()
    }

    /// `ipvsadm -a`.
    pub async fn new_destination(
        &self,
        service: &ServiceKey,
        destination: &Destination,
    ) -> Result<(), IpvsError> {
        self.apply(IpvsRequest::NewDestination {
            service: *service,
            destination: destination.clone(),
        })
        .await
    }

    /// `ipvsadm -e`: weight, forwarding and thresholds of the destination at the same address
    /// and port.
    pub async fn set_destination(
        &self,
        service: &ServiceKey,
        destination: &Destination,
    ) -> Result<(), IpvsError> {
        self.apply(IpvsRequest::SetDestination {
            service: *service,
            destination: destination.clone(),
        })
        .await
    }

    /// `ipvsadm -d`.
    pub async fn delete_destination(
        &self,
        service: &ServiceKey,
        address: std::net::IpAddr,
        port: u16,
    ) -> Result<(), IpvsError> {
        self.apply(IpvsRequest::DeleteDestination {
            service: *service,
            address,
            port,
        })
        .await
    }

    /// One request.
    pub async fn apply(&self, request: IpvsRequest) -> Result<(), IpvsError> {
        let context = request.to_string();
        let mut results = self.submit(vec![Write::from(request)]).await;
        results
            .pop()
            .unwrap_or(Err(IpvsError::NoReply { context, seconds: 0 }))
    }

    /// Many requests, pipelined: sent in order, 32 per datagram with up to 4 datagrams
    /// unacknowledged, so the kernel applies them in the order given. One result per request,
    /// in the same order; a failure does not stop the requests after it (a destination whose
    /// service failed fails too).
    pub async fn apply_all<I>(&self, requests: I) -> Vec<Result<(), IpvsError>>
    where
        I: IntoIterator<Item = IpvsRequest>,
    {
        let mut requests = requests.into_iter();
        let mut in_flight = FuturesOrdered::new();
        let mut results = Vec::new();
        loop {
            let batch: Vec<Write> = requests.by_ref().take(BATCH_SIZE).map(Write::from).collect();
            if batch.is_empty() {
                break;
            }
            if in_flight.len() >= BATCHES_IN_FLIGHT
                && let Some(done) = in_flight.next().await
            {
                results.extend(done);
            }
            in_flight.push_back(self.submit(batch));
        }
        while let Some(done) = in_flight.next().await {
            results.extend(done);
        }
        results
    }

    /// The IPVS version and connection table size (`ipvsadm -L` header).
    pub async fn info(&self) -> Result<IpvsInfo, IpvsError> {
        let context = "reading the IPVS version";
        let replies = self.read(IpvsMessage::get_info(), false, context).await?;
        let reply = replies.first().ok_or_else(|| malformed(context, "no reply"))?;
        info_from_attributes(&reply.attributes).map_err(|error| malformed(context, error))
    }

    /// The TCP, TCP FIN and UDP timeouts (`ipvsadm -L --timeout`).
    pub async fn timeouts(&self) -> Result<Timeouts, IpvsError> {
        let replies = self
            .read(IpvsMessage::get_config(), false, "reading timeouts")
            .await?;
        let reply = replies
            .first()
            .ok_or_else(|| malformed("reading timeouts", "no reply"))?;
        Ok(timeouts_from_attributes(&reply.attributes))
    }

    /// `ipvsadm --set`; a 0 leaves that timeout unchanged.
    pub async fn set_timeouts(&self, timeouts: &Timeouts) -> Result<(), IpvsError> {
        let context = format!(
            "setting timeouts tcp {} tcpfin {} udp {}",
            timeouts.tcp, timeouts.tcp_fin, timeouts.udp
        );
        self.write(IpvsMessage::set_config(timeouts), context).await
    }

    /// The running sync daemons (`ipvsadm -L --daemon`).
    pub async fn daemons(&self) -> Result<Vec<SyncDaemon>, IpvsError> {
        let context = "listing sync daemons";
        let replies = self.read(IpvsMessage::get_daemons(), true, context).await?;
        replies
            .iter()
            .map(|reply| {
                let attributes = reply.attributes.iter().find_map(|attribute| match attribute {
                    IpvsAttribute::Daemon(attributes) => Some(attributes),
                    _ => None,
                });
                let attributes =
                    attributes.ok_or_else(|| malformed(context, "a reply without IPVS_CMD_ATTR_DAEMON"))?;
                daemon_from_attributes(attributes).map_err(|error| malformed(context, error))
            })
            .collect()
    }

    /// `ipvsadm --start-daemon`. The interface must exist; a daemon already running in that
    /// state gives [`IpvsError::is_exists`].
    pub async fn start_daemon(&self, daemon: &SyncDaemon) -> Result<(), IpvsError> {
        let context = format!(
            "starting the {} sync daemon on {} (sync ID {})",
            daemon.state, daemon.interface, daemon.sync_id
        );
        self.write(IpvsMessage::new_daemon(daemon), context).await
    }

    /// `ipvsadm --stop-daemon`.
    pub async fn stop_daemon(&self, state: DaemonState) -> Result<(), IpvsError> {
        self.write(
            IpvsMessage::delete_daemon(state),
            format!("stopping the {state} sync daemon"),
        )
        .await
    }

    /// `ipvsadm -Z`: zero the counters of one service, or of every service when `None` (which
    /// touches services we do not own, but only their counters). Not counted as a write.
    pub async fn zero(&self, service: Option<&ServiceKey>) -> Result<(), IpvsError> {
        let context = match service {
            Some(key) => format!("zeroing the counters of service {key}"),
            None => "zeroing all counters".to_owned(),
        };
        self.write(IpvsMessage::zero(service), context).await
    }

    async fn write(&self, message: IpvsMessage, context: String) -> Result<(), IpvsError> {
        let mut results = self
            .submit(vec![Write {
                message,
                origin: Origin::Described(context.clone()),
            }])
            .await;
        results
            .pop()
            .unwrap_or(Err(IpvsError::NoReply { context, seconds: 0 }))
    }

    /// Queues `writes` as one datagram now (so calls reach the kernel in call order) and returns
    /// the future of their results, in order.
    fn submit(&self, writes: Vec<Write>) -> impl Future<Output = Vec<Result<(), IpvsError>>> + use<> {
        let writes_counted = writes.iter().filter(|write| write.message.cmd.is_write()).count();
        self.writes.fetch_add(
            u64::try_from(writes_counted).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let (messages, origins): (Vec<_>, Vec<_>) = writes
            .into_iter()
            .map(|Write { message, origin }| {
                (self.netlink_message(message, NLM_F_REQUEST | NLM_F_ACK), origin)
            })
            .unzip();
        let sent = self.connection.request_batch(messages, SocketAddr::new(0, 0));
        async move {
            let Ok(mut replies) = sent else {
                return origins
                    .iter()
                    .map(|origin| {
                        Err(IpvsError::ConnectionClosed {
                            context: origin.context(),
                        })
                    })
                    .collect();
            };
            let deadline = Instant::now() + REPLY_TIMEOUT;
            let mut results = Vec::with_capacity(origins.len());
            for origin in &origins {
                results.push(match timeout_at(deadline, replies.next()).await {
                    Ok(Some(reply)) => acknowledgement(reply, origin),
                    Ok(None) => Err(IpvsError::ConnectionClosed {
                        context: origin.context(),
                    }),
                    Err(_) => Err(IpvsError::NoReply {
                        context: origin.context(),
                        seconds: REPLY_TIMEOUT.as_secs(),
                    }),
                });
            }
            results
        }
    }

    /// Sends a GET (a dump when `dump`) and collects the replies. A dump runs in a task of its
    /// own holding the dump turn until the kernel's last reply: a caller that stops polling
    /// halfway (the drift check keeps its read across a `select!` loop) never keeps the turn
    /// from the others.
    async fn read(
        &self,
        message: IpvsMessage,
        dump: bool,
        context: &str,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        if !dump {
            return self.read_once(message, false, context, deadline).await;
        }
        let this = self.clone();
        let owned_context = context.to_owned();
        let turn = Arc::clone(&self.dumping);
        tokio::spawn(async move {
            let _turn = turn.lock_owned().await;
            this.read_once(message, true, &owned_context, deadline).await
        })
        .await
        .unwrap_or_else(|_| {
            Err(IpvsError::ConnectionClosed {
                context: context.to_owned(),
            })
        })
    }

    /// One GET and its replies, until `deadline`.
    async fn read_once(
        &self,
        message: IpvsMessage,
        dump: bool,
        context: &str,
        deadline: Instant,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST
        };
        let mut replies = self
            .connection
            .request(self.netlink_message(message, flags), SocketAddr::new(0, 0))
            .map_err(|_| IpvsError::ConnectionClosed {
                context: context.to_owned(),
            })?;
        let mut messages = Vec::new();
        loop {
            let reply = match timeout_at(deadline, replies.next()).await {
                Ok(Some(reply)) => reply,
                Ok(None) => return Ok(messages),
                Err(_) => {
                    return Err(IpvsError::NoReply {
                        context: context.to_owned(),
                        seconds: REPLY_TIMEOUT.as_secs(),
                    });
                }
            };
            match map_from_rawgenlmsg::<IpvsMessage>(reply)
                .map_err(|error| malformed(context, error))?
                .payload
            {
                NetlinkPayload::InnerMessage(message) => messages.push(message.payload),
                NetlinkPayload::Error(error) => {
                    if let Some(code) = error.code {
                        return Err(IpvsError::from_kernel(
                            context.to_owned(),
                            code.get().saturating_neg(),
                            None,
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    fn netlink_message(&self, message: IpvsMessage, flags: u16) -> NetlinkMessage<RawGenlMessage> {
        let mut message = GenlMessage::from_payload(message);
        message.set_resolved_family_id(self.family_id);
        let mut message = NetlinkMessage::from(message);
        message.header.flags = flags;
        message.finalize();
        map_to_rawgenlmsg(message)
    }
}

/// The outcome of one write from its reply: an ACK, or a NACK with the errno.
fn acknowledgement(reply: NetlinkMessage<RawGenlMessage>, origin: &Origin) -> Result<(), IpvsError> {
    match reply.payload {
        NetlinkPayload::Error(error) => match error.code {
            None => Ok(()),
            Some(code) => Err(IpvsError::from_kernel(
                origin.context(),
                code.get().saturating_neg(),
                origin.scheduler(),
            )),
        },
        other => Err(malformed(
            &origin.context(),
            format!("expected an acknowledgement, got {other:?}"),
        )),
    }
}

fn parse_service(reply: &IpvsMessage, context: &str) -> Result<ObservedService, IpvsError> {
    let attributes = reply.attributes.iter().find_map(|attribute| match attribute {
        IpvsAttribute::Service(attributes) => Some(attributes),
        _ => None,
    });
    let attributes = attributes.ok_or_else(|| malformed(context, "a reply without IPVS_CMD_ATTR_SERVICE"))?;
    service_from_attributes(attributes).map_err(|error| malformed(context, error))
}

pub(super) fn malformed(context: &str, message: impl std::fmt::Display) -> IpvsError {
    IpvsError::MalformedReply {
        context: context.to_owned(),
        message: message.to_string(),
    }
}

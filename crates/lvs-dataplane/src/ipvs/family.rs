//! Finding the IPVS generic netlink family (its id is assigned at module load), loading the
//! module when it is missing.

use std::io;
use std::process::Command;

use futures::StreamExt;
use genetlink::message::{RawGenlMessage, map_from_rawgenlmsg, map_to_rawgenlmsg};
use netlink_packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_proto::ConnectionHandle;
use netlink_proto::sys::SocketAddr;
use tokio::time::{Instant, timeout_at};

use super::constants::IPVS_GENL_NAME;
use super::error::IpvsError;
use super::handle::{REPLY_TIMEOUT, malformed};

/// `ENOENT`, the answer to a family lookup when the family is not registered.
const ENOENT: i32 = 2;

/// The IPVS family id, or `None` when the kernel does not know the family.
pub(super) async fn resolve_family(
    connection: &ConnectionHandle<RawGenlMessage>,
) -> Result<Option<u16>, IpvsError> {
    const CONTEXT: &str = "looking up the IPVS generic netlink family";
    let request = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(IPVS_GENL_NAME.to_owned())],
    });
    let mut request = NetlinkMessage::from(request);
    request.header.flags = NLM_F_REQUEST;
    request.finalize();
    let mut replies = connection
        .request(map_to_rawgenlmsg(request), SocketAddr::new(0, 0))
        .map_err(|_| IpvsError::ConnectionClosed {
            context: CONTEXT.to_owned(),
        })?;
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while let Some(reply) = timeout_at(deadline, replies.next())
        .await
        .map_err(|_| IpvsError::NoReply {
            context: CONTEXT.to_owned(),
            seconds: REPLY_TIMEOUT.as_secs(),
        })?
    {
        match map_from_rawgenlmsg::<GenlCtrl>(reply)
            .map_err(|error| malformed(CONTEXT, error))?
            .payload
        {
            NetlinkPayload::InnerMessage(message) => {
                let family_id = message.payload.nlas.iter().find_map(|attribute| match attribute {
                    GenlCtrlAttrs::FamilyId(family_id) => Some(*family_id),
                    _ => None,
                });
                return family_id
                    .map(Some)
                    .ok_or_else(|| malformed(CONTEXT, "no CTRL_ATTR_FAMILY_ID"));
            }
            NetlinkPayload::Error(error) => match error.code.map(|code| code.get().saturating_neg()) {
                Some(ENOENT) => return Ok(None),
                Some(errno) => {
                    return Err(IpvsError::Kernel {
                        context: CONTEXT.to_owned(),
                        errno,
                    });
                }
                None => {}
            },
            _ => {}
        }
    }
    Ok(None)
}

/// Runs `modprobe MODULE` (no shell) and says how it went.
pub(super) async fn modprobe(module: &'static str) -> String {
    tokio::task::spawn_blocking(move || {
        for program in ["modprobe", "/sbin/modprobe"] {
            match Command::new(program).arg(module).output() {
                Ok(output) if output.status.success() => return "succeeded".to_owned(),
                Ok(output) => {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    return format!("{}: {}", output.status, stderr.trim());
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return format!("cannot run {program}: {error}"),
            }
        }
        "modprobe not found".to_owned()
    })
    .await
    .unwrap_or_else(|error| format!("cannot run modprobe: {error}"))
}

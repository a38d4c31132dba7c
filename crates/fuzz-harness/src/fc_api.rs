//! Firecracker API input as a client sends it over the socket: the HTTP decoder (in two
//! reads, split where the first byte says), routing of every complete request with the
//! JSON bodies, the answers encoded, the MMDS store's put and patch; and the same bytes
//! as a `--config-file`. Nothing is opened: the pre-boot checks that touch files are not
//! reached from here.

use fc_api::http::{Decoded, Decoder};
use fc_api::mmds::MmdsStore;
use fc_api::{route, ApiRequest, Response};

/// A small payload limit, so oversized bodies are reached too.
const MAX_PAYLOAD: usize = 4096;

pub fn fc_api_input(data: &[u8]) {
    let mut decoder = Decoder::new(MAX_PAYLOAD);
    let mut mmds = MmdsStore::new(MAX_PAYLOAD);
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    'chunks: for chunk in [&data[..split], &data[split..]] {
        decoder.push(chunk);
        loop {
            let answer = match decoder.decode() {
                Ok(Decoded::Incomplete) => break,
                Ok(Decoded::Continue) => continue,
                Ok(Decoded::Request(request)) => match route::parse(&request) {
                    Ok(ApiRequest::PutMmds(value)) => answer_mmds(mmds.put(value)),
                    Ok(ApiRequest::PatchMmds(value)) => answer_mmds(mmds.patch(value)),
                    Ok(ApiRequest::GetMmds) => Response::ok(&mmds.get()),
                    Ok(other) => Response::ok(&format!("{other:?}").len()),
                    Err(e) => Response::bad_request(e),
                },
                Err(e) => {
                    let _ = Response::bad_request(e).encode(true);
                    break 'chunks;
                }
            };
            let _ = answer.encode(false);
        }
    }
    let _ = fc_api::config_file::parse(data);
}

fn answer_mmds(result: Result<(), fc_api::mmds::MmdsError>) -> Response {
    match result {
        Ok(()) => Response::no_content(),
        Err(e) => Response::bad_request(e),
    }
}

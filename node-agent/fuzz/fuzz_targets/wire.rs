//! Fuzz target: a handshake frame's body from the channel port, which anyone who can
//! reach the port may send.
//!
//! Any bytes must decode to a message or an error, never a panic; a decoded message
//! must encode to a frame of that length whose body decodes to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zerolab_agent::channels::wire::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else { return };
    let frame = message.encode();
    let (length, body) = frame.split_at(2);
    assert_eq!(usize::from(u16::from_be_bytes([length[0], length[1]])), body.len());
    assert_eq!(Message::decode(body).expect("an encoded message decodes"), message);
});

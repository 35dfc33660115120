//! Completion-mode ("posted") I/O: `post_read` / `post_write`,
//! `Event::IoDone`, `take_io`, `cancel_io`, write limits. One suite run
//! unchanged against every backend this platform has, like `contract.rs`:
//! each `fn(Backend)` of the modules becomes one `#[test]` per backend
//! module at the bottom of this file.
//!
//! Everything runs on real loopback sockets; peers are plain blocking
//! `std` sockets on threads, or non-blocking ones the test drives itself.
//!
//! The tests are split by concept: `writes`, `reads`, `lifecycle`
//! (results, cancel, deregister, capacity), `accept` (posted accepts and
//! connects), `streams` (receive streams) and `bad_input`; `support` has
//! the helpers.

#[path = "../util/mod.rs"]
mod util;

mod accept;
mod bad_input;
mod lifecycle;
mod loads;
mod reads;
mod streams;
mod support;
mod writes;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use accept::*;
use bad_input::*;
use lifecycle::*;
use loads::*;
use reads::*;
use streams::*;
use writes::*;

/// Tests share this lock; three take it alone: one that closes a
/// registered descriptor behind the runtime's back (so that no other test
/// is handed the closed number while the runtime still uses it), one that
/// lowers the descriptor limit, and the one that opens 10,000 sockets (two
/// of it at once, or it beside the others, could pass the descriptor
/// limit).
static FDS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(PoisonError::into_inner)
}

// `shared` tests run side by side; an `exclusive` one runs alone (see
// `FDS`).
every_backend! {
    echo_server_64_clients: shared,
    four_mib_write_to_a_slow_reader: shared,
    hundred_queued_writes_in_order: shared,
    empty_write_completes_after_earlier_writes: shared,
    queued_writes_take_writable_readiness: shared,
    write_to_a_reset_peer_fails: shared,
    write_to_a_closed_peer_fails: shared,
    peer_fin_completes_read_as_closed: shared,
    peer_reset_completes_read_with_error: shared,
    read_with_data_waiting_completes_at_once: shared,
    ten_thousand_posted_reads_one_active: exclusive,
    posted_read_takes_readable_readiness: shared,
    read_on_a_source_registered_writable_only: shared,
    posted_reads_on_an_edge_registration: shared,
    posted_read_on_a_spent_oneshot_registration: shared,
    io_done_carries_the_current_token: shared,
    take_io_hands_the_result_over_once: shared,
    cancel_pending_ops: shared,
    cancel_just_finished_ops: shared,
    deregister_with_ops_in_flight: shared,
    capacity_one_hundred_writes_in_order: shared,
    capacity_one_hundred_reads_in_order: shared,
    post_on_an_unregistered_source: shared,
    second_read_while_one_is_posted: shared,
    read_buffer_without_spare_capacity: shared,
    write_limit_is_would_block: shared,
    finished_writes_alone_skip_one_os_look: shared,
    a_flood_of_finished_writes_holds_nothing_back: shared,
    many_small_writes_per_socket_in_order: shared,
    cut_short_gathered_writes_resume: shared,
    held_small_writes_gathered_to_a_slow_reader: shared,
    write_limit_counts_the_per_write_overhead: shared,
    held_writes_go_out_at_the_next_wait: shared,
    held_writes_go_out_on_deregister_and_drop: shared,
    server_on_completions_alone: shared,
    accept_cancelled: shared,
    second_accept_while_one_is_posted: shared,
    accept_and_connect_on_an_unregistered_source: shared,
    connect_to_a_listening_port: shared,
    connect_to_a_closed_port_is_refused: shared,
    connect_cancelled: shared,
    cancelled_accept_loses_no_connection: shared,
    deregister_with_accept_and_connect_pending: shared,
    accepts_and_connects_on_every_trigger: shared,
    burst_accepted_one_post_at_a_time: shared,
    connections_before_the_post_are_accepted_in_order: shared,
    deregister_with_queued_connections: exclusive,
    drop_with_queued_connections: exclusive,
    recv_streams_from_many_connections: shared,
    running_out_of_buffers_loses_nothing: shared,
    recv_stream_ends_at_eof_and_reset: shared,
    cancel_deregister_drop_with_data_in_flight: exclusive,
    recv_stream_bad_inputs: shared,
    streams_ending_while_out_of_buffers: shared,
    #[cfg(unix)]
    accept_out_of_descriptors_ends_with_the_error: exclusive,
    #[cfg(unix)]
    post_on_a_closed_fd: exclusive,
}

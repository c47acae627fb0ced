//! `Queue::consume`: the deliveries of a consumer group as a blocking iterator, one claim
//! at a time, so no delivery waits in a buffer while its lease runs.

use crate::error::{Error, ErrorKind, Result};
use crate::model::Delivery;
use crate::options::ReceiveOptions;
use crate::queue::Queue;

/// Yields the group's deliveries forever, waiting as long as nothing comes; ends (`None`)
/// once the queue is closed. Each item still has to be acked or nacked.
pub struct Consume {
    q: Queue,
    group: String,
    options: ReceiveOptions,
}

impl Queue {
    /// The deliveries of `group`, one claim of one delivery at a time, each waiting up to
    /// `options.wait` before it looks again (a zero wait polls without sleeping, so it is
    /// refused). `options.max` must be 1: a delivery kept in a buffer would wait out its
    /// lease while the ones before it are handled.
    pub fn consume(&self, group: &str, options: ReceiveOptions) -> Result<Consume> {
        crate::validate::name("consumer group", group)?;
        options.validate()?;
        if options.max != 1 {
            return Err(Error::invalid(format!(
                "consume takes one delivery at a time (max 1), got max {}",
                options.max
            )));
        }
        if options.wait.is_zero() {
            return Err(Error::invalid(
                "consume needs a wait above zero, or it would poll without sleeping",
            ));
        }
        Ok(Consume {
            q: self.clone(),
            group: group.to_owned(),
            options,
        })
    }
}

impl Iterator for Consume {
    type Item = Result<Delivery>;

    fn next(&mut self) -> Option<Result<Delivery>> {
        loop {
            match self.q.receive(&self.group, self.options.clone()) {
                Ok(mut ds) => {
                    if let Some(d) = ds.pop() {
                        return Some(Ok(d));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Closed => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

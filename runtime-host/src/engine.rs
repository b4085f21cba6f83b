//! The wasmtime engine: pooling instance allocation with copy-on-write
//! memory images (so a fresh instance per request costs microseconds),
//! epoch interruption for request deadlines, and an on-disk cache of
//! compiled components keyed by the component's bytes and the engine's
//! configuration (start-up after the first run skips Cranelift).

use anyhow::{Context, Result};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; request deadlines count in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits of the instance pool.
#[derive(Debug, Clone)]
pub struct PoolLimits {
    /// Concurrent component instances (requests in flight).
    pub instances: u32,
    /// Largest linear memory one guest module may grow to.
    pub max_memory_bytes: usize,
}

fn base_config() -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    // `CAIRN_PERFMAP=1` writes /tmp/perf-<pid>.map so `perf record` can
    // name the guests' JIT-compiled functions (profiling only).
    if std::env::var("CAIRN_PERFMAP").is_ok_and(|v| v == "1") {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    c
}

/// Builds the engine, falling back to on-demand allocation when the pool's
/// virtual memory cannot be reserved (e.g. under a tight `ulimit -v`).
pub fn build(pool: &PoolLimits) -> Result<Engine> {
    let mut c = base_config();
    let mut p = PoolingAllocationConfig::default();
    // A composed app has a handful of core modules, each with one memory
    // and one table; leave headroom for adapters.
    p.total_component_instances(pool.instances);
    p.total_core_instances(pool.instances * 12);
    p.total_memories(pool.instances * 8);
    p.total_tables(pool.instances * 8);
    p.total_stacks(pool.instances);
    p.max_memory_size(pool.max_memory_bytes);
    p.max_memories_per_component(12);
    p.max_tables_per_component(12);
    p.max_core_instances_per_component(24);
    p.max_component_instance_size(1 << 20);
    p.table_elements(20_000);
    // Reset used memory with memset (only the resident pages, where the
    // kernel can tell us which) instead of madvise + page faults + TLB
    // shootdowns on every request; batch the decommits that remain.
    let env_usize = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    p.linear_memory_keep_resident(env_usize("CAIRN_MEMORY_KEEP_RESIDENT", 8 << 20));
    p.table_keep_resident(env_usize("CAIRN_TABLE_KEEP_RESIDENT", 1 << 20));
    p.decommit_batch_size(env_usize("CAIRN_DECOMMIT_BATCH", 32));
    if std::env::var("CAIRN_PAGEMAP_SCAN").map(|v| v != "0").unwrap_or(true) {
        p.pagemap_scan(wasmtime::Enabled::Auto);
    }
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    c.memory_init_cow(true);
    match Engine::new(&c) {
        Ok(e) => Ok(e),
        Err(err) => {
            tracing::warn!(error = %err, "pooling allocator unavailable, using on-demand allocation");
            Engine::new(&base_config()).map_err(|e| anyhow::Error::from(e).context("creating wasmtime engine"))
        }
    }
}

/// Starts the thread that advances the engine's epoch.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("cairn-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning epoch thread");
}

/// Compiles `bytes`, or loads the compiled form from `cache_dir`.
pub fn load_component(engine: &Engine, bytes: &[u8], cache_dir: Option<&Path>) -> Result<Component> {
    let Some(dir) = cache_dir else {
        return Ok(Component::new(engine, bytes)?);
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let key = format!("{}-{:016x}", cairn_core::digest::sha256_hex(bytes), h.finish());
    let path: PathBuf = dir.join(format!("{key}.cwasm"));
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of this
        // engine configuration (the key covers both) into our cache dir.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compiled-component cache entry")
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(e) = write_cache(&path, &component) {
        tracing::warn!(path = %path.display(), error = %e, "could not write compiled-component cache");
    }
    prune_cache(dir, KEEP_CACHED);
    Ok(component)
}

/// Compiled components kept in the cache (newest first); older builds go.
const KEEP_CACHED: usize = 16;

fn prune_cache(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, p) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(p);
    }
}

fn write_cache(path: &Path, component: &Component) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp =
        dir.join(format!(".{}.{}.tmp", std::process::id(), path.file_name().and_then(|n| n.to_str()).unwrap_or("c")));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

export { startCollector, DEFAULT_OPTIONS, type Collector, type CollectorOptions } from './collector';
export { ClickHouseStore, type StoreTarget } from './store/clickhouse';
export type { ProfileStore } from './store/store';
export { Ingester, instanceKey } from './ingest/ingester';

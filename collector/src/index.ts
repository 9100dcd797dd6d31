export { startCollector, DEFAULT_OPTIONS, type Collector, type CollectorOptions } from './collector';
export { Store, type StoreTarget } from './store/clickhouse';
export { Ingester, instanceKey } from './ingest/ingester';

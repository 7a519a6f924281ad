// Entry of the SQLite report-writer thread (storage/sqlite-ingest.ts). Plain JavaScript because a worker does not
// inherit the tsx loader of the main thread: it registers its own, then loads the TypeScript module.
import { register } from 'tsx/esm/api'

register()
const { serve } = await import('./sqlite-ingest.ts')
serve()

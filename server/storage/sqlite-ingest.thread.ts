// Entry of the SQLite report-writer thread inside the single-file server binary: build/server-native.ts bundles this
// into a string the server starts as an eval'd worker (a checkout starts sqlite-ingest.worker.js instead).
import { serve } from './sqlite-ingest.js'

serve()

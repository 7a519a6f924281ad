// The export links under the dashboard's tables: the current view as a JSON or CSV download.
import type { FastifyReply } from 'fastify'

export const isExport = (format: string | undefined) => format === 'csv' || format === 'json'

/** `json` goes out as is for format=json; otherwise `csv()` is sent as `name.csv`. */
export function sendExport(
  reply: FastifyReply,
  name: string,
  format: string | undefined,
  json: object,
  csv: () => string,
) {
  if (format === 'json') return reply.header('content-disposition', `attachment; filename="${name}.json"`).send(json)
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${name}.csv"`)
    .send(csv())
}

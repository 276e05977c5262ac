// Xen Orchestra's stats of a host and a VM: /rrd_updates requested and parsed as
// xo-server's XapiStats does (xapi-stats.mjs: _getJson, _getAndUpdateStats), through the
// npm xen-api connector's getResource, for the memory metrics of its STATS table.
// Usage: node rrd_stats.mjs URL USER PASSWORD GRANULARITY HOST_UUID VM_UUID
// Prints one JSON object: {"interval", "endTimestamp", "rows", "host": {...}, "vm": {...}}.
//
// Two differences from xo-server, both for a test server on a random port of this
// machine: getResource is not given the host (with one, the connector drops the port),
// and the server's time is this machine's clock rather than host.get_servertime.
// Events are not watched, so getResource makes no task (XO's would pass task_id).
import { createClient } from 'xen-api'

const [url, user, password, granularity, hostUuid, vmUuid] = process.argv.slice(2)

const RRD_STEP_FROM_STRING = { seconds: 5, minutes: 60, hours: 3600, days: 86400 }
const RRD_POINTS_PER_STEP = { 5: 120, 60: 120, 3600: 168, 86400: 366 }
const STATS = {
  host: {
    memoryFree: { test: 'memory_free_kib', transformValue: value => value * 1024 },
    memory: { test: 'memory_total_kib', transformValue: value => value * 1024 },
    memoryReclaimed: { test: 'memory_reclaimed', transformValue: value => value * 1024 },
    memoryReclaimedMax: { test: 'memory_reclaimed_max', transformValue: value => value * 1024 },
  },
  vm: {
    memoryFree: { test: 'memory_internal_free', transformValue: value => value * 1024 },
    memory: { test: metricType => metricType.endsWith('memory') },
    memoryTarget: { test: 'memory_target' },
  },
}

function parseNumber(value) {
  if (typeof value === 'string') {
    const asNumber = +value
    if (isNaN(asNumber) && value !== 'NaN') {
      throw new Error('cannot parse number: ' + value)
    }
    value = asNumber
  }
  return isNaN(value) ? null : value
}

function parseRrdValue(value) {
  if (typeof value === 'string') {
    const asNumber = +value
    if (isNaN(asNumber) && value !== 'NaN') {
      throw new Error('cannot parse number: ' + value)
    }
    return asNumber
  }
  return value
}

const findMetric = (metrics, metricType) => {
  for (const [key, metric] of Object.entries(metrics)) {
    const test = metric.test
    if (typeof test === 'string' ? test === metricType : test(metricType)) {
      return { key, metric }
    }
  }
  return {}
}

async function getJson(xapi, step, timestamp) {
  const response = await xapi.getResource('/rrd_updates', {
    query: { cf: 'AVERAGE', host: 'true', interval: step, json: 'true', start: timestamp },
  })
  const json = JSON.parse(await response.body.text())
  for (const row of json.data) {
    row.values = Float32Array.from(row.values, parseRrdValue)
  }
  return json
}

function statsOf(json, type, uuid) {
  const data = [...json.data].reverse() // newest first on the wire
  const stats = {}
  json.meta.legend.forEach((legend, index) => {
    const [, legendType, uuidInStat, metricType] = /^AVERAGE:([^:]+):(.+):(.+)$/.exec(legend)
    if (legendType !== type || uuidInStat !== uuid) {
      return
    }
    const { key, metric } = findMetric(STATS[type], metricType)
    if (metric === undefined) {
      return
    }
    const transform = metric.transformValue ?? (value => value)
    stats[key] = data.map(({ values }) => (Number.isNaN(values[index]) ? null : transform(values[index])))
  })
  return stats
}

const xapi = createClient({ url, auth: { user, password }, allowUnauthorized: true, watchEvents: false })
try {
  await xapi.connect()
  const step = RRD_STEP_FROM_STRING[granularity]
  const currentTimeStamp = Math.floor(Date.now() / 1000)
  const optimumTimestamp = currentTimeStamp - step * RRD_POINTS_PER_STEP[step] + step
  const json = await getJson(xapi, step, optimumTimestamp)
  const actualStep = parseNumber(json.meta.step)
  if (actualStep !== step) {
    throw new Error(`Unable to get the true granularity: ${actualStep}`)
  }
  process.stdout.write(
    JSON.stringify({
      interval: actualStep,
      endTimestamp: parseNumber(json.meta.end),
      rows: json.data.length,
      host: statsOf(json, 'host', hostUuid),
      vm: statsOf(json, 'vm', vmUuid),
    }) + '\n'
  )
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error) }) + '\n')
  process.exitCode = 1
} finally {
  await xapi.disconnect()
}

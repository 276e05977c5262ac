// Connect Xen Orchestra's connector (npm xen-api) to a xenmem server with event watching
// on, report what it fetched, then report the first update of the VM it is told to watch.
// Usage: node watch.mjs URL USER PASSWORD TRANSPORT VM_REF EXPECTED_DESCRIPTION
// Prints one JSON object per line: {"ready": ...} then {"update": ...}.
import { createClient } from 'xen-api'

const [url, user, password, transport, vmRef, expected] = process.argv.slice(2)
const print = value => process.stdout.write(JSON.stringify(value) + '\n')

const deadline = setTimeout(() => {
  print({ error: 'timed out waiting for the update' })
  process.exit(1)
}, 120000) // only a hung run takes this long

const xapi = createClient({ url, auth: { user, password }, transport, allowUnauthorized: true })

xapi.objects.on('update', objects => {
  for (const object of Object.values(objects)) {
    if (object.$ref === vmRef && object.name_description === expected) {
      print({ update: { ref: object.$ref, name_description: object.name_description } })
      clearTimeout(deadline)
      xapi.disconnect().then(() => process.exit(0))
    }
  }
})

await xapi.connect()
await xapi.objectsFetched
const counts = {}
for (const object of Object.values(xapi.objects.all)) {
  counts[object.$type] = (counts[object.$type] ?? 0) + 1
}
const vm = xapi.getObjectByRef(vmRef)
print({
  ready: true,
  counts,
  pool_master: xapi.pool.master,
  vm_fields: Object.keys(vm).length,
  memory_static_max: vm.memory_static_max,
  shadow_multiplier: vm.HVM_shadow_multiplier,
})

// Sluice adapter: reads jest's --json output, prints per-file counts and every failure with the
// first line of its message, writes them to results/, and compares the passes with the expected
// list (one "<file> :: <full test name>" a line). Exits 1 only when an expected pass did not pass.
// SLUICE_AUTHJS_UPDATE=1 rewrites the expected list from this run.
const fs = require('fs')
const path = require('path')

const [resultsFile, expectedFile] = process.argv.slice(2)
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
const root = path.resolve(__dirname, '..')

const counts = []
const failures = []
const passed = new Map()
for (const file of results.testResults) {
  const name = path.relative(root, file.name)
  const c = { name, passed: 0, failed: 0, skipped: 0 }
  for (const t of file.assertionResults) {
    if (t.status === 'passed') {
      c.passed++
      const key = `${name} :: ${t.fullName}`
      passed.set(key, (passed.get(key) ?? 0) + 1)
    } else if (t.status === 'failed') {
      c.failed++
      const message = (t.failureMessages[0] ?? '').replace(/\x1b\[[0-9;]*m/g, '')
      const line = message.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 3).join(' | ')
      failures.push(`${name} :: ${t.fullName}\t${line}`)
    } else {
      c.skipped++
    }
  }
  if (file.assertionResults.length === 0 && file.failureMessage) {
    failures.push(`${name} :: (file did not run)\t${file.failureMessage.split('\n')[0]}`)
  }
  counts.push(c)
}

const total = counts.reduce(
  (t, c) => ({ passed: t.passed + c.passed, failed: t.failed + c.failed, skipped: t.skipped + c.skipped }),
  { passed: 0, failed: 0, skipped: 0 }
)
const table = [
  '| file | passed | failed | skipped |',
  '|---|---|---|---|',
  ...counts.map((c) => `| ${c.name} | ${c.passed} | ${c.failed} | ${c.skipped} |`),
  `| total | ${total.passed} | ${total.failed} | ${total.skipped} |`,
].join('\n')
const dir = path.dirname(resultsFile)
fs.writeFileSync(path.join(dir, 'summary.md'), table + '\n')
fs.writeFileSync(path.join(dir, 'failures.tsv'), failures.join('\n') + '\n')
fs.writeFileSync(
  path.join(dir, 'passed.txt'),
  [...passed.entries()].flatMap(([k, n]) => Array(n).fill(k)).sort().join('\n') + '\n'
)
console.log(table)

if (process.env.SLUICE_AUTHJS_UPDATE === '1') {
  fs.copyFileSync(path.join(dir, 'passed.txt'), expectedFile)
  console.log(`authjs-test: wrote ${total.passed} expected passes to ${expectedFile}`)
  process.exit(0)
}
const expected = fs.existsSync(expectedFile)
  ? fs.readFileSync(expectedFile, 'utf8').split('\n').filter(Boolean)
  : []
const want = new Map()
for (const key of expected) want.set(key, (want.get(key) ?? 0) + 1)
const regressions = [...want.entries()].filter(([k, n]) => (passed.get(k) ?? 0) < n).map(([k]) => k)
const newPasses = [...passed.entries()].filter(([k, n]) => (want.get(k) ?? 0) < n).map(([k]) => k)
if (newPasses.length) {
  console.log(`authjs-test: ${newPasses.length} test(s) pass that the expected list does not name yet:`)
  for (const k of newPasses) console.log(`  + ${k}`)
}
if (regressions.length) {
  console.error(`authjs-test: ${regressions.length} expected pass(es) did not pass:`)
  for (const k of regressions) console.error(`  - ${k}`)
  for (const f of failures) if (regressions.some((k) => f.startsWith(k + '\t'))) console.error(`    ${f}`)
  process.exit(1)
}
console.log(`authjs-test: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped; no regression against ${path.basename(expectedFile)} (${expected.length} expected)`)

// Sluice adapter: auth-js's own test/jest.config.js (kept as it is), plus the port rewrite of
// sluice/ports.ts, without coverage, and only the test files we run against the server.
const upstream = require('./test/jest.config.js')

module.exports = {
  ...upstream,
  rootDir: __dirname,
  collectCoverage: false,
  setupFiles: ['<rootDir>/sluice/ports.ts'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 30000,
}

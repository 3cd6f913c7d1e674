// The public surface of src/svsm/greq: the SVSM's guest-request client and report requests.
export * from './client.js';
export * from './report.js';

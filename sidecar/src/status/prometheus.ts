import { StatusSnapshot } from './schema';

// STAND-IN (h-web): the status model's branch brings the real Prometheus text in this
// file; at the merge its version replaces this one whole. Only the signature matters.
export function prometheusText(snapshot: StatusSnapshot): string {
  return [
    '# HELP lodge_up Whether lodged answers.',
    '# TYPE lodge_up gauge',
    'lodge_up 1',
    '# HELP lodge_build_info The lodged version.',
    '# TYPE lodge_build_info gauge',
    `lodge_build_info{version="${snapshot.lodged.version.replace(/["\\\n]/g, '')}"} 1`,
    '',
  ].join('\n');
}

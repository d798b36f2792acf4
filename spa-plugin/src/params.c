/* SPDX-License-Identifier: MIT */
/*
 * The POD params of the bridge ports, built and parsed with SPA's own
 * builder, parser and filter. These are static inline functions and macros in
 * the SPA headers, so Rust reaches them through this file. No logic lives
 * here: callers pass the values, these functions only encode and decode.
 */
#include <errno.h>
#include <spa/param/audio/format-utils.h>
#include <spa/param/latency-utils.h>
#include <spa/param/param.h>
#include <spa/pod/builder.h>
#include <spa/pod/filter.h>

/* Copies `param` (built in a scratch buffer) into `buf`, filtered through
 * `filter` if given. Returns 1 with *result set, 0 when the filter rejects
 * it, < 0 on error. */
static int finish(void *buf, uint32_t size, const struct spa_pod *param,
		const struct spa_pod *filter, struct spa_pod **result)
{
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, size);

	if (param == NULL || SPA_POD_SIZE(param) > size)
		return -ENOSPC;
	if (filter != NULL)
		return spa_pod_filter(&b, result, param, filter) < 0 ? 0 : 1;
	memcpy(buf, param, SPA_POD_SIZE(param));
	*result = buf;
	return 1;
}

int asio_bridge_param_dsp_format(void *buf, uint32_t size, uint32_t id,
		const struct spa_pod *filter, struct spa_pod **result)
{
	uint8_t tmp[256];
	struct spa_pod_builder tb = SPA_POD_BUILDER_INIT(tmp, sizeof(tmp));
	const struct spa_pod *param = spa_pod_builder_add_object(&tb,
			SPA_TYPE_OBJECT_Format, id,
			SPA_FORMAT_mediaType, SPA_POD_Id(SPA_MEDIA_TYPE_audio),
			SPA_FORMAT_mediaSubtype, SPA_POD_Id(SPA_MEDIA_SUBTYPE_dsp),
			SPA_FORMAT_AUDIO_format, SPA_POD_Id(SPA_AUDIO_FORMAT_DSP_F32));
	return finish(buf, size, param, filter, result);
}

int asio_bridge_param_buffers(void *buf, uint32_t size, uint32_t max_buffers,
		uint32_t default_size, uint32_t max_size,
		const struct spa_pod *filter, struct spa_pod **result)
{
	uint8_t tmp[256];
	struct spa_pod_builder tb = SPA_POD_BUILDER_INIT(tmp, sizeof(tmp));
	const struct spa_pod *param = spa_pod_builder_add_object(&tb,
			SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers,
			SPA_PARAM_BUFFERS_buffers, SPA_POD_CHOICE_RANGE_Int(2, 1, max_buffers),
			SPA_PARAM_BUFFERS_blocks, SPA_POD_Int(1),
			SPA_PARAM_BUFFERS_size, SPA_POD_CHOICE_RANGE_Int(default_size, 4, max_size),
			SPA_PARAM_BUFFERS_stride, SPA_POD_Int(4));
	return finish(buf, size, param, filter, result);
}

int asio_bridge_param_latency(void *buf, uint32_t size, const struct spa_latency_info *info,
		struct spa_pod **result)
{
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, size);
	*result = spa_latency_build(&b, SPA_PARAM_Latency, info);
	return *result == NULL ? -ENOSPC : 1;
}

/* 0 when `param` is the DSP float format, a negative errno otherwise. */
int asio_bridge_parse_dsp_format(const struct spa_pod *param)
{
	uint32_t media_type, media_subtype;
	struct spa_audio_info_dsp info = { 0 };

	if (spa_format_parse(param, &media_type, &media_subtype) < 0)
		return -EINVAL;
	if (media_type != SPA_MEDIA_TYPE_audio || media_subtype != SPA_MEDIA_SUBTYPE_dsp)
		return -EINVAL;
	if (spa_format_audio_dsp_parse(param, &info) < 0)
		return -EINVAL;
	return info.format == SPA_AUDIO_FORMAT_DSP_F32 ? 0 : -ENOTSUP;
}

/* Reads a Latency param. */
int asio_bridge_parse_latency(const struct spa_pod *param, struct spa_latency_info *info)
{
	return spa_latency_parse(param, info);
}

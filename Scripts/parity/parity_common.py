"""Shared helpers for the full-size Ladon parity check: model configs, preprocessing, labels, I/O.

Everything here builds the REAL sc2bench / torchvision / CompressAI modules; nothing is reimplemented
except the torchvision-0.13 float32 resize-size rule (see ladon-reference §2.1), which modern torchvision
no longer follows.
"""
import base64
import hashlib
import logging
import math
import os
import warnings
from collections import OrderedDict

warnings.filterwarnings('ignore')
logging.getLogger('torchdistill').setLevel(logging.ERROR)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.transforms import functional as TF  # noqa: E402

IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]
MIN_SIZE = 416
MAX_SIZE = 416
SIZE_DIVISIBLE = 32
RESIZE_RULES = ('torchvision-0.13', 'torchvision-0.15')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')
# The Ladon variant the configs below describe: set_backbone() switches it for the whole run.
BACKBONES = ('resnet50', 'resnest269e')
BACKBONE = 'resnet50'


def set_backbone(name):
    """resnet50 (sc2bench splittable_resnet) or resnest269e (splittable_resnest over timm; needs timm <= 1.0.20,
    whose ResNet does not pass device/dtype to the FrozenBatchNorm2d the detection backbone uses)."""
    global BACKBONE
    if name not in BACKBONES:
        raise ValueError(f'unknown backbone {name!r}; expected one of {BACKBONES}')
    BACKBONE = name


# ---------------------------------------------------------------------------------------------- configs
def bottleneck_config():
    return {'key': 'FPBasedResNetBottleneck',
            'kwargs': {'num_bottleneck_channels': 24 if BACKBONE == 'resnet50' else 32, 'num_target_channels': 256}}


def classification_config(src_ckpt=None):
    """[L] configs/ilsvrc2012/ladon/splittable_{resnet50,resnest269e}-fp-beta*_from_*.yaml (student model)."""
    kwargs = {'num_classes': 1000, 'pretrained': False, 'bottleneck_config': bottleneck_config(),
              'pre_transform': None, 'skips_avgpool': False, 'skips_fc': False}
    if BACKBONE == 'resnet50':
        config = {'key': 'splittable_resnet', 'kwargs': dict(kwargs, resnet_name='resnet50')}
    else:
        config = {'key': 'splittable_resnest', 'kwargs': dict(kwargs, resnest_name='resnest269e', inplanes=2048)}
    if src_ckpt is not None:
        config['src_ckpt'] = src_ckpt
    return config


def detection_backbone_config():
    """Backbone block of [L] configs/coco2017/ladon/faster_rcnn_splittable_resnet50-fp-beta*_fpn.yaml."""
    config = classification_config()
    config['kwargs']['inplanes'] = 2048
    return config


def detection_fpn_kwargs():
    return {'return_layer_dict': {'bottleneck_layer': '1', 'layer2': '2', 'layer3': '3', 'layer4': '4'},
            'in_channels_list': [256, 512, 1024, 2048], 'out_channels': 256,
            'analyzable_layer_key': 'bottleneck_layer'}


def detection_model_kwargs():
    """Everything `faster_rcnn_model` receives besides backbone_config (pretrained=False: no downloads)."""
    return {'pretrained': False, 'progress': False, 'num_classes': 91,
            'backbone_fpn_kwargs': detection_fpn_kwargs(),
            'in_channels_stage2': 256, 'min_size': MIN_SIZE, 'max_size': MAX_SIZE}


def segmentation_backbone_config():
    config = classification_config()
    config['kwargs']['skips_avgpool'] = True
    config['kwargs']['skips_fc'] = True
    return config


def segmentation_model_kwargs():
    """[L] configs/pascal_voc2012/ladon/deeplabv3_splittable_resnet50-fp-beta*_two_stages.yaml."""
    return {'pretrained': False, 'pretrained_backbone_name': None, 'num_classes': 21, 'uses_aux': True,
            'num_input_channels': 2048, 'num_aux_channels': 1024,
            'return_layer_dict': {'layer3': 'aux', 'layer4': 'out'},
            'analyzable_layer_key': 'bottleneck_layer'}


# ---------------------------------------------------------------------------------------------- images
def list_images(paths):
    """Expands directories into their image files (sorted); keeps explicit files."""
    result = []
    for path in paths:
        if os.path.isdir(path):
            result += sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
        else:
            result.append(path)
    return result


def load_image(path):
    """PIL decode -> RGB uint8 array (H, W, 3) and the [0,1] float CHW tensor `to_tensor` makes of it."""
    with Image.open(path) as im:
        rgb = im.convert('RGB')
        pixels = np.asarray(rgb, dtype=np.uint8).copy()
        return pixels, TF.to_tensor(rgb)


def resized_size(height, width, rule):
    """Output (H', W') of GeneralizedRCNNTransform's resize for min_size = max_size = 416.

    torchvision-0.13: scale = min(416.0 / float32(min), 416.0 / float32(max)) computed by torch on float32
    tensors (as 0.13.1's `_resize_image_and_masks` does), then floor(dim * scale) in double.
    torchvision-0.15: the same formula on Python doubles (modern torchvision).
    """
    if rule == 'torchvision-0.13':
        shape = torch.tensor([height, width])
        mn = torch.min(shape).to(dtype=torch.float32)
        mx = torch.max(shape).to(dtype=torch.float32)
        scale = torch.min(float(MIN_SIZE) / mn, float(MAX_SIZE) / mx).item()
    elif rule == 'torchvision-0.15':
        scale = min(MIN_SIZE / min(height, width), MAX_SIZE / max(height, width))
    else:
        raise ValueError(f'unknown resize rule {rule!r}; expected one of {RESIZE_RULES}')
    return int(math.floor(height * scale)), int(math.floor(width * scale))


def preprocess(images, transform, rule):
    """GeneralizedRCNNTransform.forward (normalise -> resize -> batch/pad) with an explicit resize rule.

    `images`: list of CHW float tensors in [0,1]. Returns (ImageList, original sizes).
    """
    from torchvision.models.detection.image_list import ImageList
    original_sizes, resized = [], []
    for image in images:
        original_sizes.append((int(image.shape[-2]), int(image.shape[-1])))
        x = transform.normalize(image)
        h, w = resized_size(image.shape[-2], image.shape[-1], rule)
        x = F.interpolate(x[None], size=(h, w), mode='bilinear', align_corners=False)[0]
        resized.append(x)
    image_sizes = [(int(x.shape[-2]), int(x.shape[-1])) for x in resized]
    batch = transform.batch_images(resized, size_divisible=transform.size_divisible)
    return ImageList(batch, image_sizes), original_sizes


def make_transform():
    from torchvision.models.detection.transform import GeneralizedRCNNTransform
    return GeneralizedRCNNTransform(MIN_SIZE, MAX_SIZE, IMAGE_MEAN, IMAGE_STD, size_divisible=SIZE_DIVISIBLE)


# ---------------------------------------------------------------------------------------------- labels
def labels():
    """(ImageNet 1000, COCO 91, VOC 21) category names from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet50_Weights
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
    from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights
    return (ResNet50_Weights.IMAGENET1K_V1.meta['categories'],
            FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta['categories'],
            DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1.meta['categories'])


# ---------------------------------------------------------------------------------------------- entropy bottleneck
LEGACY_EB_KEYS = {'matrices.': '_matrix', 'biases.': '_bias', 'factors.': '_factor'}


def to_legacy_eb_key(key):
    """compressai >= 1.2.7 names (`matrices.0`) -> the CompressAI 1.2.2 names the released checkpoints carry."""
    for new, old in LEGACY_EB_KEYS.items():
        marker = 'entropy_bottleneck.' + new
        if marker in key:
            head, tail = key.split(marker)
            return head + 'entropy_bottleneck.' + old + tail
    return key


def entropy_bottleneck_from_state(state_dict):
    """Builds a CompressAI EntropyBottleneck (24 or 32 channels) from any per-task checkpoint's state_dict (either
    key style)."""
    from compressai.entropy_models import EntropyBottleneck
    prefix = None
    for key in state_dict:
        if key.endswith('entropy_bottleneck.quantiles'):
            prefix = key[:-len('quantiles')]
            break
    if prefix is None:
        raise KeyError('no entropy_bottleneck.quantiles in the checkpoint')
    local = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(prefix):
            name = key[len(prefix):]
            for new, old in LEGACY_EB_KEYS.items():
                if name.startswith(old):
                    name = new + name[len(old):]
            local[name] = value
    eb = EntropyBottleneck(local['quantiles'].shape[0])
    for name in ('_quantized_cdf', '_offset', '_cdf_length'):
        getattr(eb, name).resize_(local[name].shape)
    eb.load_state_dict(local)
    return eb.eval()


def load_checkpoint(path):
    return torch.load(path, map_location='cpu', weights_only=False)


# ---------------------------------------------------------------------------------------------- encoding
def b64(data):
    return base64.b64encode(bytes(data)).decode('ascii')


def unb64(text):
    return base64.b64decode(text.encode('ascii'))


def sha256(data):
    return hashlib.sha256(bytes(data)).hexdigest()
